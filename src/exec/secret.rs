//! Database URLs whose passwords never reach output, errors or journals.

/// A connection URL and the secrets in it.
#[derive(Clone)]
pub struct DbUrl {
    url: String,
    secrets: Vec<String>,
}

impl std::fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DbUrl({})", self.redacted())
    }
}

/// Decodes `%XX` escapes, leaving anything malformed as it is (bytes
/// that are not UTF-8 become U+FFFD).
pub(crate) fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Whether a query or keyword parameter named `key` (lower case) holds a
/// secret: a password, a JWT, any `...token...` or `...secret...`.
fn secret_key(key: &str) -> bool {
    matches!(key, "password" | "pass" | "pwd" | "jwt")
        || key.contains("token")
        || key.contains("secret")
}

impl DbUrl {
    /// Wraps `url`, noting the password of its user info and of a
    /// `password=`, `authToken=` (any `...token...`) or `...secret...`
    /// query parameter, raw and percent-decoded.
    pub fn new(url: &str) -> DbUrl {
        let mut found = Vec::new();
        // Not a URL: a libpq keyword string (`host=... password=...`) or a
        // URL missing its `//` (`postgres:user:pw@host`). Its secrets are
        // found all the same, since it is quoted back in errors.
        if !url.contains("://") {
            for pair in url.split([' ', '&', ';']) {
                if let Some((key, v)) = pair.split_once('=')
                    && secret_key(&key.trim().to_ascii_lowercase())
                {
                    found.push(v.trim_matches(['\'', '"']).to_string());
                }
            }
            if let Some((_, rest)) = url.split_once(':') {
                for (at, _) in rest.match_indices('@') {
                    if let Some((_, password)) = rest[..at].split_once(':') {
                        found.push(password.to_string());
                    }
                }
            }
        }
        if let Some((_, rest)) = url.split_once("://") {
            // A password may hold an unescaped `/`, `?`, `#` or `@`, so the
            // user info may end at any `@`: each candidate is a secret (the
            // longest is replaced first, so the URL is redacted up to its
            // last `@`, and a driver's message quoting a piece of it is too).
            // Over HTTP (libSQL) the user info itself would be the token.
            let scheme = url
                .split(':')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            let http = matches!(scheme.as_str(), "libsql" | "http" | "https");
            for (at, _) in rest.match_indices('@') {
                match rest[..at].split_once(':') {
                    Some((_, password)) => found.push(password.to_string()),
                    None if http => found.push(rest[..at].to_string()),
                    None => {}
                }
            }
        }
        let scheme = url
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        // Over HTTP (libSQL) a fragment can only be a token put there.
        if matches!(scheme.as_str(), "libsql" | "http" | "https")
            && let Some((_, fragment)) = url.split_once('#')
        {
            found.push(fragment.to_string());
        }
        if let Some((_, query)) = url.split_once(['?', '#']) {
            for pair in query.split(['&', '#', '?']) {
                if let Some((key, v)) = pair.split_once('=')
                    && secret_key(&percent_decode(key).to_ascii_lowercase())
                {
                    found.push(v.to_string());
                }
            }
        }
        let mut secrets = Vec::new();
        for s in found.into_iter().filter(|s| !s.is_empty()) {
            let decoded = percent_decode(&s);
            if decoded != s {
                secrets.push(decoded);
            }
            secrets.push(s);
        }
        DbUrl {
            url: url.to_string(),
            secrets,
        }
    }

    /// Whether the URL itself holds a password, which then sits in the
    /// process's arguments where every local user can read it.
    pub fn has_password(&self) -> bool {
        !self.secrets.is_empty()
    }

    /// Its secrets, raw and percent-decoded: what a mask blanks out of
    /// what a shell step prints (its environment may hold the URL).
    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }

    /// The URL itself, for the driver only.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// The URL with every secret replaced by `***`.
    pub fn redacted(&self) -> String {
        self.scrub(&self.url)
    }

    /// `text` with every secret of this URL replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        let mut secrets = self.secrets.clone();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for s in secrets {
            out = out.replace(&s, "***");
        }
        out
    }
}

/// The values of `secret` parameters (format section 12), and how to
/// blank them out of any text: as written, as a SQL literal of each
/// dialect, and as JSON writes them (a journal line).
#[derive(Debug, Clone, Default)]
pub struct Mask {
    /// Every form to blank, longest first; with what replaces it.
    forms: Vec<(String, &'static str)>,
}

impl Mask {
    /// A mask for `secrets`, as the statements of `dialects` would hold them.
    pub fn new(secrets: &[String], dialects: &[crate::plan::Dialect]) -> Mask {
        let mut forms: Vec<(String, &'static str)> = Vec::new();
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            let value = minijinja::Value::from(secret.as_str());
            for dialect in dialects {
                if let Ok(literal) = crate::template::literal(&value, *dialect) {
                    forms.push((literal, "'***'"));
                }
            }
            let json = serde_json::to_string(secret).unwrap_or_default();
            forms.push((json[1..json.len() - 1].to_string(), "***"));
            forms.push((secret.clone(), "***"));
        }
        forms.sort_by_key(|(f, _)| std::cmp::Reverse(f.len()));
        forms.dedup();
        Mask { forms }
    }

    /// Every text inside `value` (not its keys) with every secret blanked
    /// out: the JSON stays JSON, whatever the secret looks like.
    pub fn apply_json(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) => *s = self.apply(s),
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.apply_json(v)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|v| self.apply_json(v)),
            _ => {}
        }
    }

    /// `text` with every secret blanked out.
    pub fn apply(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (form, with) in &self.forms {
            if !form.is_empty() && out.contains(form.as_str()) {
                out = out.replace(form.as_str(), with);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_that_is_no_url_still_has_its_password_redacted() {
        let libpq = DbUrl::new("host=127.0.0.1 user=runbook password=Kv9secretpw dbname=runbook");
        assert_eq!(
            libpq.redacted(),
            "host=127.0.0.1 user=runbook password=*** dbname=runbook"
        );
        let no_slashes = DbUrl::new("postgres:runbook:Kv9secretD@127.0.0.1/runbook");
        assert!(!no_slashes.redacted().contains("Kv9secretD"));
    }

    #[test]
    fn passwords_are_redacted_in_every_form() {
        let u = DbUrl::new("postgres://ops:s3cr%40t@db.internal:5432/wpca?sslmode=require");
        assert_eq!(
            u.redacted(),
            "postgres://ops:***@db.internal:5432/wpca?sslmode=require"
        );
        assert_eq!(
            u.scrub("auth failed for s3cr@t and s3cr%40t"),
            "auth failed for *** and ***"
        );
        let q = DbUrl::new("mysql://root@127.0.0.1/x?password=hunter2&ssl-mode=disabled");
        assert_eq!(
            q.redacted(),
            "mysql://root@127.0.0.1/x?password=***&ssl-mode=disabled"
        );
        let token = DbUrl::new("libsql://db.turso.io?authToken=eyJ.abc.def");
        assert_eq!(token.redacted(), "libsql://db.turso.io?authToken=***");
        assert!(token.has_password());
        for url in [
            "http://eyJ.abc.def@127.0.0.1:8080",
            "http://127.0.0.1:8080#authToken=eyJ.abc.def",
            "http://127.0.0.1:8080/#eyJ.abc.def",
            "http://127.0.0.1:8080/?tls=0&auth%54oken=eyJ.abc.def",
        ] {
            assert!(!DbUrl::new(url).redacted().contains("eyJ.abc"), "{url}");
        }
        let user = DbUrl::new("postgres://ops@db/x");
        assert_eq!(user.redacted(), "postgres://ops@db/x");
        let none = DbUrl::new("sqlite://runbooks/x.db?mode=rwc");
        assert_eq!(none.redacted(), "sqlite://runbooks/x.db?mode=rwc");
        assert!(!format!("{u:?}").contains("s3cr"));
        for (url, password) in [
            ("postgres://ops:pa/ss@db:5432/wpca", "pa/ss"),
            ("postgres://ops:p?a#s@db/wpca?sslmode=require", "p?a#s"),
            ("mysql://root:a@b/c:d@127.0.0.1:3306/x", "a@b/c:d"),
            ("mysql://root:x:y@h/db?user=a@b", "x:y"),
        ] {
            let u = DbUrl::new(url);
            assert!(!u.redacted().contains(password), "{url}: {}", u.redacted());
            assert!(u.has_password());
            assert!(!u.scrub(&format!("bad {password} here")).contains(password));
        }
    }
}
