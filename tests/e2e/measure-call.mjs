// Measure a real call: N people (default 3) join one room through the page in chromium; print
// the time from each Join click to the first remote frame, then the server's CPU use and its CPU
// time per forwarded packet over a steady window (from /api/v1/stats).
//
// Not a test (it asserts nothing but that the call works); run it inside a loopback-only
// namespace, with the binary to measure:
//
//   cargo build --release
//   CONFAB_BIN=$PWD/target/release/confab unshare -n -- bash -c \
//     'ip link set lo up && node tests/e2e/measure-call.mjs [people] [seconds]'

import { launchBrowser, openParticipant, sleep, startServer, waitForVideoFrom } from './helpers.mjs';

const people = Number(process.argv[2] || 3);
const seconds = Number(process.argv[3] || 30);

/** @param {string} url */
async function stats(url) {
  const res = await fetch(new URL('/api/v1/stats', url));
  return /** @type {Record<string, number>} */ (await res.json());
}

const server = await startServer('measure-call');
const browser = await launchBrowser();
try {
  const ps = [];
  for (let i = 0; i < people; i++) {
    ps.push(await openParticipant(browser, server.url, { room: 'measure', name: `p${i + 1}` }));
  }
  await Promise.all(ps.map((p) => p.clickJoin()));
  await Promise.all(ps.map((p) => p.waitJoined()));
  const ids = ps.map((p) => /** @type {string} */ (p.id));
  const timings = await Promise.all(ps.map((p) => waitForVideoFrom(p, ids.filter((id) => id !== p.id))));
  timings.forEach((t, i) => console.log(`${ps[i].name}: Join click -> first remote frame ${t.first} ms, all others ${t.all} ms`));

  await sleep(5000);
  const a = await stats(server.url);
  await sleep(seconds * 1000);
  const b = await stats(server.url);
  const wall = b.uptime_seconds - a.uptime_seconds;
  const cpu = b.process_cpu_seconds - a.process_cpu_seconds;
  const forwarded = b.rtp_forwarded - a.rtp_forwarded;
  const received = b.rtp_in - a.rtp_in;
  console.log(`over ${wall.toFixed(1)} s with ${people} people:`);
  console.log(`  server CPU ${(100 * cpu / wall).toFixed(1)} % of one core (${cpu.toFixed(2)} s)`);
  console.log(`  RTP in ${(received / wall).toFixed(0)} pkt/s, forwarded ${(forwarded / wall).toFixed(0)} pkt/s, ${(8 * (b.bytes_out - a.bytes_out) / wall / 1e6).toFixed(2)} Mbit/s out`);
  console.log(`  ${(1e6 * cpu / forwarded).toFixed(1)} µs of server CPU per forwarded packet (all server work, /proc CPU time at 10 ms resolution)`);
} finally {
  await browser.close();
  await server.stop();
}
