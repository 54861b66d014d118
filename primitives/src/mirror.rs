//! A model mirror's address: what a registered `artifact_uri` may hold.
//!
//! Executors fetch a model their store lacks from its mirror (`inferchain-engine`'s
//! `fetch`), and the registry refuses an address they could never use at registration,
//! so a bad address is governance's error to fix, never an executor's to be slashed for.
//! The rule is one function, [`parse_mirror_uri`], shared by the registry and the fetcher.
//!
//! Accepted: `http://HOST[:PORT][/PATH]` in printable ASCII, where HOST is a DNS name or
//! an IPv4 address (letters, digits, `.` and `-`), PORT is 1..=65535 and PATH is made of
//! unreserved characters (`A-Z a-z 0-9 - . _ ~`), `/` and `%`, with no `..` segment. No
//! user info, query or fragment. Integrity comes from the model's hashes, not the
//! transport, so plain HTTP is what is spoken (see the engine's `fetch`).

/// Why an `artifact_uri` is not a mirror address executors can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MirrorUriError {
    /// It does not start with `http://`.
    NotHttp,
    /// A byte outside printable ASCII, or a character not allowed where it stands.
    BadCharacter,
    /// No host after `http://`.
    NoHost,
    /// The port is not a number in 1..=65535.
    BadPort,
    /// A `..` segment in the path.
    ParentSegment,
}

/// A parsed mirror address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MirrorUri<'a> {
    pub host: &'a str,
    pub port: u16,
    /// Starts with `/` (just `/` when the address has no path).
    pub path: &'a str,
}

fn host_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'.' || c == b'-'
}

fn path_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'/' | b'%')
}

/// Parses `uri` under the rule in the module docs.
pub fn parse_mirror_uri<'a>(uri: &'a [u8]) -> Result<MirrorUri<'a>, MirrorUriError> {
    let rest = uri
        .strip_prefix(b"http://")
        .ok_or(MirrorUriError::NotHttp)?;
    let (authority, path) = match rest.iter().position(|&c| c == b'/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, &b"/"[..]),
    };
    let (host, port) = match authority.iter().rposition(|&c| c == b':') {
        Some(i) => (&authority[..i], Some(&authority[i + 1..])),
        None => (authority, None),
    };
    if host.is_empty() {
        return Err(MirrorUriError::NoHost);
    }
    if !host.iter().all(|&c| host_char(c)) || !path.iter().all(|&c| path_char(c)) {
        return Err(MirrorUriError::BadCharacter);
    }
    let port = match port {
        None => 80,
        Some(digits) => {
            if digits.is_empty() || digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
                return Err(MirrorUriError::BadPort);
            }
            let n = digits
                .iter()
                .fold(0u32, |n, d| n * 10 + u32::from(*d - b'0'));
            u16::try_from(n)
                .ok()
                .filter(|p| *p != 0)
                .ok_or(MirrorUriError::BadPort)?
        }
    };
    if path.split(|&c| c == b'/').any(|segment| segment == b"..") {
        return Err(MirrorUriError::ParentSegment);
    }
    // Every byte checked above is ASCII.
    let text = |b: &'a [u8]| core::str::from_utf8(b).map_err(|_| MirrorUriError::BadCharacter);
    Ok(MirrorUri {
        host: text(host)?,
        port,
        path: text(path)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_addresses_parse_or_name_their_fault() {
        assert_eq!(
            parse_mirror_uri(b"http://127.0.0.1:8080/ab12"),
            Ok(MirrorUri {
                host: "127.0.0.1",
                port: 8080,
                path: "/ab12"
            })
        );
        assert_eq!(
            parse_mirror_uri(b"http://models.example.org"),
            Ok(MirrorUri {
                host: "models.example.org",
                port: 80,
                path: "/"
            })
        );
        for (uri, fault) in [
            (&b"https://x/y"[..], MirrorUriError::NotHttp),
            (b"ftp://x", MirrorUriError::NotHttp),
            (b"http:///path", MirrorUriError::NoHost),
            (b"http://:80/p", MirrorUriError::NoHost),
            (b"http://x:0/p", MirrorUriError::BadPort),
            (b"http://x:65536/p", MirrorUriError::BadPort),
            (b"http://x:/p", MirrorUriError::BadPort),
            (b"http://x:8a/p", MirrorUriError::BadPort),
            (b"http://user@x/p", MirrorUriError::BadCharacter),
            (b"http://x/p q", MirrorUriError::BadCharacter),
            (b"http://x/p?q=1", MirrorUriError::BadCharacter),
            (b"http://x/p\xff", MirrorUriError::BadCharacter),
            (b"http://x/a/../b", MirrorUriError::ParentSegment),
            (b"http://x/..", MirrorUriError::ParentSegment),
        ] {
            assert_eq!(
                parse_mirror_uri(uri),
                Err(fault),
                "{}",
                String::from_utf8_lossy(uri)
            );
        }
    }
}
