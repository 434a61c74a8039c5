//! The web client, embedded into the binary at build time: nothing to build or install to run
//! it.

/// (path, content type, contents)
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("/index.html", "text/html; charset=utf-8", include_bytes!("../../../web/index.html")),
    ("/app.js", "text/javascript; charset=utf-8", include_bytes!("../../../web/app.js")),
    ("/boot.js", "text/javascript; charset=utf-8", include_bytes!("../../../web/boot.js")),
    ("/protocol.js", "text/javascript; charset=utf-8", include_bytes!("../../../web/protocol.js")),
    ("/mesh.js", "text/javascript; charset=utf-8", include_bytes!("../../../web/mesh.js")),
    ("/messages.js", "text/javascript; charset=utf-8", include_bytes!("../../../web/messages.js")),
    ("/flow.js", "text/javascript; charset=utf-8", include_bytes!("../../../web/flow.js")),
    ("/reconnect.js", "text/javascript; charset=utf-8", include_bytes!("../../../web/reconnect.js")),
    ("/media.js", "text/javascript; charset=utf-8", include_bytes!("../../../web/media.js")),
    ("/files.js", "text/javascript; charset=utf-8", include_bytes!("../../../web/files.js")),
    ("/chat.js", "text/javascript; charset=utf-8", include_bytes!("../../../web/chat.js")),
    ("/stats.js", "text/javascript; charset=utf-8", include_bytes!("../../../web/stats.js")),
    ("/statsview.js", "text/javascript; charset=utf-8", include_bytes!("../../../web/statsview.js")),
    ("/layout.js", "text/javascript; charset=utf-8", include_bytes!("../../../web/layout.js")),
    ("/share.js", "text/javascript; charset=utf-8", include_bytes!("../../../web/share.js")),
    ("/devices.js", "text/javascript; charset=utf-8", include_bytes!("../../../web/devices.js")),
    ("/meter.js", "text/javascript; charset=utf-8", include_bytes!("../../../web/meter.js")),
    ("/settings.js", "text/javascript; charset=utf-8", include_bytes!("../../../web/settings.js")),
    ("/localmedia.js", "text/javascript; charset=utf-8", include_bytes!("../../../web/localmedia.js")),
    ("/trends.js", "text/javascript; charset=utf-8", include_bytes!("../../../web/trends.js")),
    ("/sparkline.js", "text/javascript; charset=utf-8", include_bytes!("../../../web/sparkline.js")),
    ("/style.css", "text/css; charset=utf-8", include_bytes!("../../../web/style.css")),
];

/// The content type and contents of the asset at `path`.
pub(crate) fn get(path: &str) -> Option<(&'static str, &'static [u8])> {
    ASSETS.iter().find(|(p, _, _)| *p == path).map(|(_, t, body)| (*t, *body))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_and_its_modules_are_embedded() {
        let (t, page) = super::get("/index.html").unwrap();
        assert!(t.starts_with("text/html"));
        let page = std::str::from_utf8(page).unwrap();
        for module in ["app.js", "style.css"] {
            assert!(page.contains(module), "index.html does not load {module}");
        }
        // Every module a page module imports is served.
        let mut modules = vec!["app.js".to_string()];
        while let Some(module) = modules.pop() {
            let (t, body) = super::get(&format!("/{module}")).unwrap_or_else(|| panic!("{module} is not embedded"));
            assert!(t.starts_with("text/javascript"));
            let body = std::str::from_utf8(body).unwrap();
            for line in body.lines().filter(|l| l.starts_with("import ")) {
                let target = line.rsplit("'./").next().unwrap().trim_end_matches("';");
                modules.push(target.to_string());
            }
        }
        assert!(super::get("/../Cargo.toml").is_none());
    }
}
