//! Secrets out of everything trade2026 prints, logs or serves: banners, `/status` pages,
//! `config check`, error messages. One function, applied wherever a configured address or URL
//! leaves the process.

/// Option names whose values are secrets.
const SECRET_NAMES: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "token",
    "secret",
    "api_key",
    "apikey",
    "access_key",
    "secret_key",
    "access_token",
    "auth",
];

fn is_secret_name(name: &str) -> bool {
    SECRET_NAMES.iter().any(|n| name.eq_ignore_ascii_case(n))
}

/// An address without its secrets: the password of URL userinfo, and `password=`, `token=` and
/// similar options of Feast's form or of a query string. Strings without any come back as they
/// are, so it is safe to apply to every string that is printed, logged or served.
pub fn connection_string(address: &str) -> String {
    const HIDDEN: &str = "***";
    let mut out = String::with_capacity(address.len());
    let rest = match address.split_once("://") {
        Some((scheme, rest)) => {
            out.push_str(scheme);
            out.push_str("://");
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (authority, tail) = rest.split_at(end);
            if let Some((userinfo, host)) = authority.rsplit_once('@') {
                match userinfo.split_once(':') {
                    Some((user, _)) => {
                        out.push_str(user);
                        out.push(':');
                        out.push_str(HIDDEN);
                    }
                    None => out.push_str(userinfo),
                }
                out.push('@');
                out.push_str(host);
            } else {
                out.push_str(authority);
            }
            tail
        }
        None => address,
    };
    // `password=…` up to the next separator, wherever it appears.
    let mut i = 0;
    let bytes = rest.as_bytes();
    while i < rest.len() {
        let at_option = i == 0 || matches!(bytes[i - 1], b',' | b'?' | b'&' | b';' | b' ');
        let key = rest[i..]
            .find('=')
            .map(|eq| &rest[i..i + eq])
            .filter(|k| is_secret_name(k.trim()));
        if at_option && let Some(key) = key {
            out.push_str(key);
            out.push('=');
            out.push_str(HIDDEN);
            let value_start = i + key.len() + 1;
            i = rest[value_start..]
                .find([',', '&', ';', '#'])
                .map_or(rest.len(), |n| value_start + n);
            continue;
        }
        let ch = rest[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show_in_an_address() {
        for (address, shown) in [
            ("valkey:6379", "valkey:6379"),
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            ("redis://:s3cret@host:6379/2", "redis://:***@host:6379/2"),
            (
                "rediss://user:p%40ss:w@host:6380",
                "rediss://user:***@host:6380",
            ),
            ("redis://user@host", "redis://user@host"),
            (
                "redis://host:1/0?password=x&db=1",
                "redis://host:1/0?password=***&db=1",
            ),
            (
                "valkey:6379,db=1,password=\"s3cret\",ssl=true",
                "valkey:6379,db=1,password=***,ssl=true",
            ),
            ("host:1, Password = abc", "host:1, Password =***"),
        ] {
            let r = connection_string(address);
            assert_eq!(r, shown, "{address}");
            assert!(!r.contains("s3cret") && !r.contains("p%40ss"), "{r}");
        }
    }

    #[test]
    fn tokens_in_query_strings_are_hidden_and_plain_text_is_untouched() {
        assert_eq!(
            connection_string("wss://ws.example/v2?token=abc&depth=10"),
            "wss://ws.example/v2?token=***&depth=10"
        );
        assert_eq!(
            connection_string("http://k:v@s3.local:8333?access_key=AK"),
            "http://k:***@s3.local:8333?access_key=***"
        );
        for plain in ["BTCUSDT", "0.0.0.0", "a sentence, with commas", "x=1,y=2"] {
            assert_eq!(connection_string(plain), plain);
        }
    }
}
