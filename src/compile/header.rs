//! The header: id, dialect, connections, parameters, fixtures, test values,
//! the environment, from AsciiDoc attributes or Markdown front matter.

use super::*;

impl Compiler<'_> {
    /// Reads the header: id, dialect, connections, parameters, fixtures, test values.
    pub(super) fn header(&mut self) -> String {
        let doc = self.doc;
        let stem = self
            .path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("runbook");
        let mut id = slug(stem);
        if id.is_empty() {
            id = "runbook".into();
        }
        let mut dialect = None;
        let mut db_fields: Vec<(&str, &str, &crate::document::HeaderAttr)> = Vec::new();
        let mut fixtures: Vec<(Option<&str>, &crate::document::HeaderAttr)> = Vec::new();
        let mut test_params = Vec::new();
        for attr in &doc.header {
            let key = attr.key.as_str();
            if key == "runbook-id" {
                if valid_step_id(&attr.value) {
                    id = attr.value.clone();
                } else {
                    let d = self.error(
                        "bad-header",
                        format!("runbook id `{}` is not valid", attr.value),
                        attr.span,
                    );
                    Self::hint(
                        d,
                        "an id is lower-case letters, digits, `-` and `_`, starting with a letter or digit",
                    );
                }
            } else if key == "dialect" {
                match Dialect::parse(&attr.value) {
                    Some(d) => dialect = Some(d),
                    None => {
                        let d = self.error(
                            "bad-header",
                            format!("unknown dialect `{}`", attr.value),
                            attr.span,
                        );
                        Self::hint(d, "the dialects are sqlite, postgres and mysql");
                    }
                }
            } else if let Some(rest) = key.strip_prefix("db-") {
                match rest.split_once('-') {
                    Some((conn, field)) => db_fields.push((conn, field, attr)),
                    None => db_fields.push((rest, "", attr)),
                }
            } else if key == "environment" {
                self.environment = Some(attr.value.clone());
            } else if key == "registry" {
                if valid_registry(&attr.value) {
                    self.registry = Some(attr.value.clone());
                } else {
                    let d = self.error(
                        "bad-header",
                        format!("registry `{}` is not a table name prefix", attr.value),
                        attr.span,
                    );
                    Self::hint(
                        d,
                        "a prefix is letters, digits and `_` (at most 40), starting with a letter or `_`, with a schema before a `.` where the dialect has schemas: `ops.runbook_registry`",
                    );
                }
            } else if key == "approvals" {
                match attr.value.trim().parse::<u32>() {
                    Ok(n) if n <= 10 => self.approvals = n,
                    _ => {
                        let d = self.error(
                            "bad-header",
                            format!("approvals `{}` is not a number from 0 to 10", attr.value),
                            attr.span,
                        );
                        Self::hint(
                            d,
                            "the number of operators, other than the one running it, who approve the plan hash with `runbook-compile approve`",
                        );
                    }
                }
            } else if key == "fixture" {
                fixtures.push((None, attr));
            } else if let Some(conn) = key.strip_prefix("fixture-") {
                fixtures.push((Some(conn), attr));
            } else if let Some(name) = key.strip_prefix("param-") {
                self.param(name, attr);
            } else if let Some(name) = key.strip_prefix("test-param-") {
                test_params.push((name, attr));
            }
        }
        let default_dialect = dialect.unwrap_or(Dialect::Sqlite);
        for (conn, field, attr) in &db_fields {
            if !field.is_empty() && *field != "dialect" {
                continue;
            }
            if !valid_connection(conn) {
                let d = self.error(
                    "bad-header",
                    format!("connection name `{conn}` is not valid"),
                    attr.span,
                );
                Self::hint(
                    d,
                    "a connection name is lower-case letters, digits and `_`, starting with a letter",
                );
                continue;
            }
            if self.connections.iter().any(|c| c.name == *conn) {
                self.error(
                    "bad-header",
                    format!("connection `{conn}` is declared twice"),
                    attr.span,
                );
                continue;
            }
            let conn_dialect = if attr.value.is_empty() {
                Some(default_dialect)
            } else {
                Dialect::parse(&attr.value)
            };
            match conn_dialect {
                Some(d) => self.connections.push(Connection {
                    name: conn.to_string(),
                    dialect: d,
                    fixture: None,
                    database: None,
                }),
                None => {
                    let d = self.error(
                        "bad-header",
                        format!("unknown dialect `{}` for connection `{conn}`", attr.value),
                        attr.span,
                    );
                    Self::hint(d, "the dialects are sqlite, postgres and mysql");
                }
            }
        }
        if self.connections.is_empty() {
            self.connections.push(Connection {
                name: "default".into(),
                dialect: default_dialect,
                fixture: None,
                database: None,
            });
        }
        for (conn, field, attr) in &db_fields {
            if field.is_empty() || *field == "dialect" {
                continue;
            }
            let known = self.connections.iter().position(|c| c.name == *conn);
            if let (Some(i), "name") = (known, *field) {
                if attr.value.is_empty() {
                    self.error(
                        "bad-header",
                        format!("database name for `{conn}` is empty"),
                        attr.span,
                    );
                } else {
                    self.connections[i].database = Some(attr.value.clone());
                }
                continue;
            }
            let d = if known.is_some() {
                self.error(
                    "bad-header",
                    format!("unknown connection setting `{field}` for `{conn}`"),
                    attr.span,
                )
            } else {
                self.error(
                    "bad-header",
                    format!("connection name `{conn}-{field}` is not valid"),
                    attr.span,
                )
            };
            Self::hint(
                d,
                "declare a connection as `:db-NAME: DIALECT` and the database it must reach as `:db-NAME-name: DATABASE` (front matter: `databases: {NAME: {dialect: DIALECT, name: DATABASE}}`)",
            );
        }
        self.dialect = dialect.unwrap_or(self.connections[0].dialect);
        for (conn, attr) in fixtures {
            let target = match conn {
                None => Some(0),
                Some(name) => self.connections.iter().position(|c| c.name == name),
            };
            let Some(target) = target else {
                let d = self.error(
                    "bad-header",
                    format!(
                        "fixture for undeclared connection `{}`",
                        conn.unwrap_or_default()
                    ),
                    attr.span,
                );
                Self::hint(d, "declare the connection with `:db-NAME: DIALECT` first");
                continue;
            };
            if !self.runbook_dir().join(&attr.value).is_file() {
                self.warn(
                    "missing-file",
                    format!("fixture `{}` does not exist", attr.value),
                    attr.span,
                )
                .hint = Some("fixture paths are relative to the runbook file".into());
            }
            self.connections[target].fixture = Some(attr.value.clone());
        }
        for (name, attr) in test_params {
            let Some(param) = self.params.iter_mut().find(|p| p.name == name) else {
                let d = self.error(
                    "bad-header",
                    format!("test value for undeclared parameter `{name}`"),
                    attr.span,
                );
                Self::hint(d, format!("declare it with `:param-{name}: TYPE`"));
                continue;
            };
            param.test_value = Some(attr.value.clone());
            if let Some(file) = attr.value.strip_prefix('@')
                && !self.runbook_dir().join(file).is_file()
            {
                self.warn(
                    "missing-file",
                    format!("test value file `{file}` does not exist"),
                    attr.span,
                )
                .hint = Some("`@FILE` paths are relative to the runbook file".into());
            }
        }
        id
    }

    pub(super) fn param(&mut self, name: &str, attr: &crate::document::HeaderAttr) {
        if !valid_name(name) {
            let d = self.error(
                "bad-header",
                format!("parameter name `{name}` is not valid"),
                attr.span,
            );
            Self::hint(
                d,
                "a parameter name is letters, digits and `_`, starting with a letter or `_`",
            );
            return;
        }
        if crate::template::RESERVED.contains(&name) {
            self.error(
                "bad-header",
                format!(
                    "parameter name `{name}` is taken: {}",
                    crate::template::reserved_why(name)
                ),
                attr.span,
            );
            return;
        }
        if self.params.iter().any(|p| p.name == name) {
            self.error(
                "bad-header",
                format!("parameter `{name}` is declared twice"),
                attr.span,
            );
            return;
        }
        match ParamType::parse(&attr.value) {
            Some(ty) => {
                let location = self.location(attr.span);
                self.params.push(Param {
                    name: name.to_string(),
                    ty,
                    test_value: None,
                    location,
                });
            }
            None => {
                let d = self.error(
                    "bad-header",
                    format!("unknown parameter type `{}`", attr.value),
                    attr.span,
                );
                Self::hint(d, "the types are int, text, date, int-list and text-list");
            }
        }
    }
}

/// Whether `s` is a registry prefix: a name, or `schema.name`, each of
/// letters, digits and `_` starting with a letter or `_`, the name at
/// most 40 long (a table name adds `_checkpoints`).
fn valid_registry(s: &str) -> bool {
    let name = |p: &str| {
        let mut chars = p.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let (schema, table) = s.split_once('.').map_or((None, s), |(a, b)| (Some(a), b));
    schema.is_none_or(|sc| name(sc) && sc.len() <= 63) && name(table) && table.len() <= 40
}
