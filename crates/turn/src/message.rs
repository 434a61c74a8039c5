//! The STUN message format (RFC 8489 §5, §14), which TURN (RFC 8656) extends with methods and
//! attributes: parsing without copying ([`Message::parse`]) and building ([`MessageBuilder`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::Error;

/// The fixed value in every STUN message since RFC 5389.
pub const MAGIC_COOKIE: u32 = 0x2112_a442;
/// The header: type, length, magic cookie, transaction id.
pub const HEADER_LEN: usize = 20;
/// FINGERPRINT is the CRC-32 of the message XOR this ("STUN").
const FINGERPRINT_XOR: u32 = 0x5354_554e;
/// More attributes than any real message carries; a datagram with more is refused.
const MAX_ATTRIBUTES: usize = 64;
/// The CRC-32 of FINGERPRINT (the one of zlib, Ethernet and ISO-HDLC).
const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// A message's class: the two class bits of its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A request, which gets a response.
    Request,
    /// An indication, which gets none.
    Indication,
    /// A success response.
    Success,
    /// An error response.
    Error,
}

impl Class {
    fn bits(self) -> u16 {
        match self {
            Class::Request => 0b00,
            Class::Indication => 0b01,
            Class::Success => 0b10,
            Class::Error => 0b11,
        }
    }

    fn from_bits(bits: u16) -> Class {
        match bits & 0b11 {
            0b00 => Class::Request,
            0b01 => Class::Indication,
            0b10 => Class::Success,
            _ => Class::Error,
        }
    }
}

/// A STUN method: the 12 method bits of a message's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Method(pub u16);

impl Method {
    /// Binding (RFC 8489).
    pub const BINDING: Method = Method(0x001);
    /// Allocate (RFC 8656).
    pub const ALLOCATE: Method = Method(0x003);
    /// Refresh (RFC 8656).
    pub const REFRESH: Method = Method(0x004);
    /// Send (RFC 8656, indication only).
    pub const SEND: Method = Method(0x006);
    /// Data (RFC 8656, indication only).
    pub const DATA: Method = Method(0x007);
    /// CreatePermission (RFC 8656).
    pub const CREATE_PERMISSION: Method = Method(0x008);
    /// ChannelBind (RFC 8656).
    pub const CHANNEL_BIND: Method = Method(0x009);
}

/// Attribute types this crate knows (RFC 8489 §18.3, RFC 8656 §18, RFC 8445 §16.1).
pub mod attr {
    /// MAPPED-ADDRESS (RFC 8489).
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    /// USERNAME (RFC 8489).
    pub const USERNAME: u16 = 0x0006;
    /// MESSAGE-INTEGRITY (RFC 8489).
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    /// ERROR-CODE (RFC 8489).
    pub const ERROR_CODE: u16 = 0x0009;
    /// UNKNOWN-ATTRIBUTES (RFC 8489).
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000a;
    /// CHANNEL-NUMBER (RFC 8656).
    pub const CHANNEL_NUMBER: u16 = 0x000c;
    /// LIFETIME (RFC 8656).
    pub const LIFETIME: u16 = 0x000d;
    /// XOR-PEER-ADDRESS (RFC 8656).
    pub const XOR_PEER_ADDRESS: u16 = 0x0012;
    /// DATA (RFC 8656).
    pub const DATA: u16 = 0x0013;
    /// REALM (RFC 8489).
    pub const REALM: u16 = 0x0014;
    /// NONCE (RFC 8489).
    pub const NONCE: u16 = 0x0015;
    /// XOR-RELAYED-ADDRESS (RFC 8656).
    pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
    /// REQUESTED-ADDRESS-FAMILY (RFC 8656).
    pub const REQUESTED_ADDRESS_FAMILY: u16 = 0x0017;
    /// EVEN-PORT (RFC 8656).
    pub const EVEN_PORT: u16 = 0x0018;
    /// REQUESTED-TRANSPORT (RFC 8656).
    pub const REQUESTED_TRANSPORT: u16 = 0x0019;
    /// DONT-FRAGMENT (RFC 8656).
    pub const DONT_FRAGMENT: u16 = 0x001a;
    /// MESSAGE-INTEGRITY-SHA256 (RFC 8489).
    pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001c;
    /// PASSWORD-ALGORITHM (RFC 8489).
    pub const PASSWORD_ALGORITHM: u16 = 0x001d;
    /// USERHASH (RFC 8489).
    pub const USERHASH: u16 = 0x001e;
    /// XOR-MAPPED-ADDRESS (RFC 8489).
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    /// RESERVATION-TOKEN (RFC 8656).
    pub const RESERVATION_TOKEN: u16 = 0x0022;
    /// PRIORITY (RFC 8445).
    pub const PRIORITY: u16 = 0x0024;
    /// USE-CANDIDATE (RFC 8445).
    pub const USE_CANDIDATE: u16 = 0x0025;
    /// ADDITIONAL-ADDRESS-FAMILY (RFC 8656).
    pub const ADDITIONAL_ADDRESS_FAMILY: u16 = 0x8000;
    /// PASSWORD-ALGORITHMS (RFC 8489).
    pub const PASSWORD_ALGORITHMS: u16 = 0x8002;
    /// ALTERNATE-DOMAIN (RFC 8489).
    pub const ALTERNATE_DOMAIN: u16 = 0x8003;
    /// SOFTWARE (RFC 8489).
    pub const SOFTWARE: u16 = 0x8022;
    /// ALTERNATE-SERVER (RFC 8489).
    pub const ALTERNATE_SERVER: u16 = 0x8023;
    /// FINGERPRINT (RFC 8489).
    pub const FINGERPRINT: u16 = 0x8028;
    /// ICE-CONTROLLED (RFC 8445).
    pub const ICE_CONTROLLED: u16 = 0x8029;
    /// ICE-CONTROLLING (RFC 8445).
    pub const ICE_CONTROLLING: u16 = 0x802a;

    /// Comprehension-required types (below 0x8000) this crate understands: a request carrying
    /// any other is answered 420 (Unknown Attribute).
    pub const UNDERSTOOD: &[u16] = &[
        MAPPED_ADDRESS,
        USERNAME,
        MESSAGE_INTEGRITY,
        ERROR_CODE,
        UNKNOWN_ATTRIBUTES,
        CHANNEL_NUMBER,
        LIFETIME,
        XOR_PEER_ADDRESS,
        DATA,
        REALM,
        NONCE,
        XOR_RELAYED_ADDRESS,
        REQUESTED_ADDRESS_FAMILY,
        EVEN_PORT,
        REQUESTED_TRANSPORT,
        DONT_FRAGMENT,
        MESSAGE_INTEGRITY_SHA256,
        PASSWORD_ALGORITHM,
        USERHASH,
        XOR_MAPPED_ADDRESS,
        RESERVATION_TOKEN,
        PRIORITY,
        USE_CANDIDATE,
    ];
}

/// One attribute of a parsed message: its type and value (without padding), borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    /// The attribute type.
    pub kind: u16,
    /// The value.
    pub value: &'a [u8],
}

/// A parsed STUN message, borrowing the datagram it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    /// Request, indication, success or error.
    pub class: Class,
    /// The method.
    pub method: Method,
    /// The transaction id, which a response repeats.
    pub transaction_id: [u8; 12],
    /// The attributes in order, up to MESSAGE-INTEGRITY (included) and FINGERPRINT: RFC 8489
    /// §14.5 has the others after MESSAGE-INTEGRITY ignored.
    pub attrs: Vec<Attr<'a>>,
    /// Whether the message ended with a FINGERPRINT, which matched.
    pub fingerprint: bool,
    /// Where the MESSAGE-INTEGRITY attribute starts in the message, if it has one.
    pub integrity_at: Option<usize>,
    raw: &'a [u8],
}

impl<'a> Message<'a> {
    /// Parse one whole message (a UDP datagram, or one message cut out of a TCP stream). A
    /// FINGERPRINT, if present, must match.
    pub fn parse(data: &'a [u8]) -> Result<Message<'a>, Error> {
        let header = Header::parse(data)?;
        let body = &data[HEADER_LEN..];
        if header.length % 4 != 0 || header.length != body.len() {
            return Err(Error::BadLength { declared: header.length, actual: body.len() });
        }
        let mut attrs = Vec::new();
        let mut fingerprint = false;
        let mut integrity_at = None;
        let mut pos = 0;
        while pos < body.len() {
            if body.len() - pos < 4 {
                return Err(Error::BadLength { declared: header.length, actual: body.len() });
            }
            let kind = u16::from_be_bytes([body[pos], body[pos + 1]]);
            let len = usize::from(u16::from_be_bytes([body[pos + 2], body[pos + 3]]));
            let start = pos + 4;
            let Some(value) = body.get(start..start + len) else {
                return Err(Error::AttributeOverflow(kind));
            };
            let at = HEADER_LEN + pos;
            pos = start + len.next_multiple_of(4);
            if pos > body.len() {
                return Err(Error::AttributeOverflow(kind));
            }
            if fingerprint {
                // Nothing may follow FINGERPRINT.
                return Err(Error::AttributeAfterIntegrity(kind));
            }
            if kind == attr::FINGERPRINT {
                let Ok(stored) = <[u8; 4]>::try_from(value) else {
                    return Err(Error::BadAttribute(kind));
                };
                if u32::from_be_bytes(stored) != fingerprint_of(&data[..at]) {
                    return Err(Error::BadFingerprint);
                }
                fingerprint = true;
                continue;
            }
            if integrity_at.is_some() && kind != attr::MESSAGE_INTEGRITY_SHA256 {
                // Ignored (RFC 8489 §14.5).
                continue;
            }
            if kind == attr::MESSAGE_INTEGRITY {
                integrity_at = Some(at);
            }
            if attrs.len() == MAX_ATTRIBUTES {
                return Err(Error::TooManyAttributes(MAX_ATTRIBUTES));
            }
            attrs.push(Attr { kind, value });
        }
        Ok(Message {
            class: header.class,
            method: header.method,
            transaction_id: header.transaction_id,
            attrs,
            fingerprint,
            integrity_at,
            raw: data,
        })
    }

    /// The value of the first attribute of type `kind`.
    pub fn get(&self, kind: u16) -> Option<&'a [u8]> {
        self.attrs.iter().find(|a| a.kind == kind).map(|a| a.value)
    }

    /// Comprehension-required attributes (types below 0x8000) this crate does not understand.
    pub fn unknown_required(&self) -> Vec<u16> {
        let mut unknown: Vec<u16> = self
            .attrs
            .iter()
            .map(|a| a.kind)
            .filter(|k| *k < 0x8000 && !attr::UNDERSTOOD.contains(k))
            .collect();
        unknown.dedup();
        unknown
    }

    /// A (XOR-)address attribute's value, decoded: XOR-MAPPED-ADDRESS, XOR-PEER-ADDRESS,
    /// XOR-RELAYED-ADDRESS.
    pub fn xor_address(&self, kind: u16) -> Option<Result<SocketAddr, Error>> {
        self.get(kind).map(|v| decode_xor_address(kind, v, &self.transaction_id))
    }

    /// The message's bytes.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
}

/// The 20-byte header of a STUN message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Request, indication, success or error.
    pub class: Class,
    /// The method.
    pub method: Method,
    /// The length of the attributes that follow, in bytes.
    pub length: usize,
    /// The transaction id.
    pub transaction_id: [u8; 12],
}

impl Header {
    /// Parse the header at the start of `data`: STUN's first two bits are zero and the magic
    /// cookie is in place. Nothing after the header is looked at.
    pub fn parse(data: &[u8]) -> Result<Header, Error> {
        if data.len() < HEADER_LEN {
            return Err(Error::TooShort(data.len()));
        }
        let kind = u16::from_be_bytes([data[0], data[1]]);
        if kind & 0xc000 != 0 || u32::from_be_bytes([data[4], data[5], data[6], data[7]]) != MAGIC_COOKIE {
            return Err(Error::NotStun);
        }
        let class = Class::from_bits(((kind >> 4) & 0b01) | ((kind >> 7) & 0b10));
        let method = Method((kind & 0x000f) | ((kind >> 1) & 0x0070) | ((kind >> 2) & 0x0f80));
        let mut transaction_id = [0; 12];
        transaction_id.copy_from_slice(&data[8..20]);
        Ok(Header { class, method, length: usize::from(u16::from_be_bytes([data[2], data[3]])), transaction_id })
    }
}

/// How long the frame at the start of `data` is, on a TCP or TLS stream: a STUN message (its
/// header's length plus 20) or ChannelData (its length plus 4, padded to 4 bytes). `None` when
/// the first four bytes have not arrived yet; `Err` when it is neither.
pub fn stream_frame_len(data: &[u8]) -> Option<Result<usize, Error>> {
    let head = data.get(..4)?;
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    Some(match head[0] {
        0x00..=0x3f => Ok(HEADER_LEN + len),
        0x40..=0x7f => Ok((4 + len).next_multiple_of(4)),
        _ => Err(Error::NotStun),
    })
}

/// The message type field for `class` and `method` (RFC 8489 §5: M11..M7 C1 M6..M4 C0 M3..M0).
fn message_type(class: Class, method: Method) -> u16 {
    let m = method.0 & 0x0fff;
    let c = class.bits();
    (m & 0x000f) | ((c & 0b01) << 4) | ((m & 0x0070) << 1) | ((c & 0b10) << 7) | ((m & 0x0f80) << 2)
}

fn fingerprint_of(bytes: &[u8]) -> u32 {
    CRC32.checksum(bytes) ^ FINGERPRINT_XOR
}

/// Decode an XOR-*-ADDRESS value (RFC 8489 §14.2).
pub fn decode_xor_address(kind: u16, value: &[u8], transaction_id: &[u8; 12]) -> Result<SocketAddr, Error> {
    let bad = || Error::BadAttribute(kind);
    if value.len() < 4 {
        return Err(bad());
    }
    let port = u16::from_be_bytes([value[2], value[3]]) ^ (MAGIC_COOKIE >> 16) as u16;
    let mut mask = [0u8; 16];
    mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    mask[4..].copy_from_slice(transaction_id);
    let ip = match (value[1], value.len()) {
        (0x01, 8) => {
            let mut b = [0u8; 4];
            for (i, x) in b.iter_mut().enumerate() {
                *x = value[4 + i] ^ mask[i];
            }
            IpAddr::V4(Ipv4Addr::from(b))
        }
        (0x02, 20) => {
            let mut b = [0u8; 16];
            for (i, x) in b.iter_mut().enumerate() {
                *x = value[4 + i] ^ mask[i];
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return Err(bad()),
    };
    Ok(SocketAddr::new(ip, port))
}

/// Builds one STUN message; attributes are appended in the order given.
#[derive(Debug, Clone)]
pub struct MessageBuilder {
    buf: Vec<u8>,
    transaction_id: [u8; 12],
}

impl MessageBuilder {
    /// A message with no attributes yet.
    pub fn new(class: Class, method: Method, transaction_id: [u8; 12]) -> MessageBuilder {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&message_type(class, method).to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(&transaction_id);
        MessageBuilder { buf, transaction_id }
    }

    /// Append an attribute (padded to 4 bytes with zeros). Values longer than 65,535 bytes are
    /// cut: no attribute this crate writes comes near.
    pub fn attr(&mut self, kind: u16, value: &[u8]) -> &mut MessageBuilder {
        let value = &value[..value.len().min(usize::from(u16::MAX))];
        self.buf.extend_from_slice(&kind.to_be_bytes());
        self.buf.extend_from_slice(&(value.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(value);
        self.buf.resize(self.buf.len().next_multiple_of(4), 0);
        self
    }

    /// Append an XOR-*-ADDRESS attribute holding `addr`.
    pub fn xor_address(&mut self, kind: u16, addr: SocketAddr) -> &mut MessageBuilder {
        let mut mask = [0u8; 16];
        mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        mask[4..].copy_from_slice(&self.transaction_id);
        let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
        let mut value = Vec::with_capacity(20);
        value.push(0);
        match addr.ip() {
            IpAddr::V4(ip) => {
                value.push(0x01);
                value.extend_from_slice(&port.to_be_bytes());
                value.extend(ip.octets().iter().zip(mask).map(|(b, m)| b ^ m));
            }
            IpAddr::V6(ip) => {
                value.push(0x02);
                value.extend_from_slice(&port.to_be_bytes());
                value.extend(ip.octets().iter().zip(mask).map(|(b, m)| b ^ m));
            }
        }
        self.attr(kind, &value)
    }

    /// Append ERROR-CODE: `code` (300–699) and a reason phrase.
    pub fn error_code(&mut self, code: u16, reason: &str) -> &mut MessageBuilder {
        let mut value = vec![0, 0, (code / 100) as u8 & 0x07, (code % 100) as u8];
        value.extend_from_slice(reason.as_bytes());
        self.attr(attr::ERROR_CODE, &value)
    }

    /// Append UNKNOWN-ATTRIBUTES listing `kinds`.
    pub fn unknown_attributes(&mut self, kinds: &[u16]) -> &mut MessageBuilder {
        let value: Vec<u8> = kinds.iter().flat_map(|k| k.to_be_bytes()).collect();
        self.attr(attr::UNKNOWN_ATTRIBUTES, &value)
    }

    /// The message, without FINGERPRINT.
    pub fn build(mut self) -> Vec<u8> {
        self.set_length(0);
        self.buf
    }

    /// The message, ending with a FINGERPRINT.
    pub fn build_with_fingerprint(mut self) -> Vec<u8> {
        // The length covers the FINGERPRINT attribute when its CRC is taken (RFC 8489 §14.7).
        self.set_length(8);
        let crc = fingerprint_of(&self.buf);
        self.buf.extend_from_slice(&attr::FINGERPRINT.to_be_bytes());
        self.buf.extend_from_slice(&4u16.to_be_bytes());
        self.buf.extend_from_slice(&crc.to_be_bytes());
        self.buf
    }

    /// The message so far.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Write the header's length: the attributes so far and `extra` bytes more.
    pub(crate) fn set_length(&mut self, extra: usize) {
        let len = (self.buf.len() - HEADER_LEN + extra) as u16;
        self.buf[2..4].copy_from_slice(&len.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: [u8; 12] = [0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae];

    /// RFC 5769 §2.2, the sample IPv4 Binding response.
    const RFC5769_IPV4: [u8; 80] = [
        0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87,
        0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
        0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43, 0x00, 0x08, 0x00, 0x14, 0x2b, 0x91,
        0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7,
        0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
    ];

    /// RFC 5769 §2.3, the sample IPv6 Binding response.
    const RFC5769_IPV6: [u8; 92] = [
        0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87,
        0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
        0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25,
        0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9, 0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1,
        0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41, 0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb,
        0x0b, 0x4c,
    ];

    #[test]
    fn parses_the_rfc_5769_responses() {
        let m = Message::parse(&RFC5769_IPV4).unwrap();
        assert_eq!((m.class, m.method, m.transaction_id), (Class::Success, Method::BINDING, TID));
        assert!(m.fingerprint);
        assert_eq!(m.integrity_at, Some(48));
        assert_eq!(m.get(attr::SOFTWARE), Some(&b"test vector"[..]));
        assert_eq!(m.xor_address(attr::XOR_MAPPED_ADDRESS), Some(Ok("192.0.2.1:32853".parse().unwrap())));
        let m = Message::parse(&RFC5769_IPV6).unwrap();
        assert!(m.fingerprint);
        assert_eq!(
            m.xor_address(attr::XOR_MAPPED_ADDRESS),
            Some(Ok("[2001:db8:1234:5678:11:2233:4455:6677]:32853".parse().unwrap()))
        );
    }

    #[test]
    fn builds_what_it_parses() {
        for addr in ["192.0.2.1:32853", "[2001:db8:1234:5678:11:2233:4455:6677]:32853"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let mut b = MessageBuilder::new(Class::Success, Method::BINDING, TID);
            b.attr(attr::SOFTWARE, b"test vector").xor_address(attr::XOR_MAPPED_ADDRESS, addr);
            let bytes = b.build_with_fingerprint();
            let m = Message::parse(&bytes).unwrap();
            assert!(m.fingerprint);
            assert_eq!(m.xor_address(attr::XOR_MAPPED_ADDRESS), Some(Ok(addr)));
            // The same attributes as the RFC's vector, so the same bytes up to MESSAGE-INTEGRITY
            // but for SOFTWARE's padding byte, which the vector makes a space and we a zero.
            let reference: &[u8] = if addr.is_ipv4() { &RFC5769_IPV4[4..48] } else { &RFC5769_IPV6[4..60] };
            let mut ours = bytes.clone();
            assert_eq!(ours[35], 0);
            ours[35] = 0x20;
            assert_eq!(&ours[4..4 + reference.len()], reference);
        }
        // Every class and method round-trips through the type field.
        for class in [Class::Request, Class::Indication, Class::Success, Class::Error] {
            for method in [Method::BINDING, Method::ALLOCATE, Method::CHANNEL_BIND, Method(0xfff)] {
                let m = MessageBuilder::new(class, method, TID).build();
                let h = Header::parse(&m).unwrap();
                assert_eq!((h.class, h.method, h.length), (class, method, 0));
            }
        }
        assert_eq!(message_type(Class::Success, Method::BINDING), 0x0101);
        assert_eq!(message_type(Class::Error, Method::ALLOCATE), 0x0113);
    }

    #[test]
    fn refuses_what_is_not_a_stun_message() {
        assert_eq!(Message::parse(&RFC5769_IPV4[..19]), Err(Error::TooShort(19)));
        let mut rtp = RFC5769_IPV4;
        rtp[0] = 0x80;
        assert_eq!(Message::parse(&rtp), Err(Error::NotStun));
        let mut cookie = RFC5769_IPV4;
        cookie[5] = 0;
        assert_eq!(Message::parse(&cookie), Err(Error::NotStun));
        // Length field and datagram disagree.
        assert!(matches!(Message::parse(&RFC5769_IPV4[..76]), Err(Error::BadLength { .. })));
        // A corrupted byte: the fingerprint says so.
        let mut flipped = RFC5769_IPV4;
        flipped[30] ^= 1;
        assert_eq!(Message::parse(&flipped), Err(Error::BadFingerprint));
        // An attribute that claims more than the message holds.
        let mut over = MessageBuilder::new(Class::Request, Method::BINDING, TID);
        over.attr(attr::SOFTWARE, b"abcd");
        let mut over = over.build();
        over[23] = 200;
        assert_eq!(Message::parse(&over), Err(Error::AttributeOverflow(attr::SOFTWARE)));
        // Something after FINGERPRINT (whose CRC, over the header with the longer length, is
        // right).
        let mut after = MessageBuilder::new(Class::Request, Method::BINDING, TID).build_with_fingerprint();
        after.extend_from_slice(&[0x80, 0x22, 0, 0]);
        let len = (after.len() - HEADER_LEN) as u16;
        after[2..4].copy_from_slice(&len.to_be_bytes());
        let crc = fingerprint_of(&after[..HEADER_LEN]);
        after[HEADER_LEN + 4..HEADER_LEN + 8].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(Message::parse(&after), Err(Error::AttributeAfterIntegrity(attr::SOFTWARE)));
    }

    #[test]
    fn cuts_frames_out_of_a_stream() {
        assert_eq!(stream_frame_len(&RFC5769_IPV4[..3]), None);
        assert_eq!(stream_frame_len(&RFC5769_IPV4), Some(Ok(80)));
        assert_eq!(stream_frame_len(&[0x40, 0x00, 0x00, 0x05]), Some(Ok(12)), "padded");
        assert_eq!(stream_frame_len(&[0x40, 0x00, 0x00, 0x04]), Some(Ok(8)));
        assert_eq!(stream_frame_len(&[0x80, 0, 0, 0]), Some(Err(Error::NotStun)));
    }

    #[test]
    fn finds_unknown_comprehension_required_attributes() {
        let mut b = MessageBuilder::new(Class::Request, Method::BINDING, TID);
        b.attr(0x0031, b"x").attr(attr::PRIORITY, &[0; 4]).attr(0xc001, b"optional").attr(0x0031, b"y");
        let bytes = b.build();
        let m = Message::parse(&bytes).unwrap();
        assert_eq!(m.unknown_required(), vec![0x0031]);
    }

    #[test]
    fn a_bad_address_is_an_error_not_a_panic() {
        for value in [&[][..], &[0, 1, 0, 0][..], &[0, 3, 0, 0, 1, 2, 3, 4][..], &[0, 2, 0, 0, 1, 2, 3, 4][..]] {
            assert_eq!(decode_xor_address(attr::XOR_PEER_ADDRESS, value, &TID), Err(Error::BadAttribute(attr::XOR_PEER_ADDRESS)));
        }
    }
}
