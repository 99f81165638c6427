//! Typed configuration read from environment variables with one prefix per
//! service (`ORCHESTRA_SCHEDULER_`, …), and every check a setting gets
//! before a service starts. A bad, unknown or missing variable stops
//! start-up with a message that names the variable, its value (passwords
//! masked) and what to do.
//!
//! A service describes its settings once, as a serde struct implementing
//! [`Settings`]; [`load`] reads it, refuses variables under the prefix that
//! are not fields (typos), and runs the service's own [`Settings::validate`],
//! which is built from the checks here ([`check_url`], [`check_nonzero`],
//! [`check_at_least`]).

use std::net::SocketAddr;

use serde::de::{DeserializeOwned, Visitor};

/// A variable that is missing, unknown, or whose value cannot be used.
/// Binaries exit with status 2 on it (see [`crate::start`]).
#[derive(Debug, thiserror::Error)]
#[error("configuration: {variable}: {problem}")]
pub struct ConfigError {
    /// The full variable name, prefix included.
    pub variable: String,
    /// What is wrong and what is expected.
    pub problem: String,
}

impl ConfigError {
    /// A fault of one variable.
    pub fn new(variable: impl Into<String>, problem: impl Into<String>) -> ConfigError {
        ConfigError {
            variable: variable.into(),
            problem: problem.into(),
        }
    }

    /// The database a URL names could not be reached at start-up: names the
    /// variable and the URL with its password masked, and what to check.
    pub fn database(variable: &str, url: &str, cause: &dyn std::fmt::Display) -> ConfigError {
        ConfigError::new(
            variable,
            format!(
                "the database at `{}` cannot be used ({cause}); check that the database \
                 runs and accepts connections there, or set {variable} to another",
                mask_password(url)
            ),
        )
    }

    /// A database URL of a form no backend reads: `reason` says which forms
    /// are read.
    pub fn database_url(variable: &str, reason: &str) -> ConfigError {
        ConfigError::new(
            variable,
            format!("{reason}; set {variable} to one of these"),
        )
    }

    /// A listening socket could not be bound.
    pub fn listen(variable: &str, addr: SocketAddr, cause: &std::io::Error) -> ConfigError {
        let problem = match cause.kind() {
            std::io::ErrorKind::AddrInUse => format!(
                "cannot listen on {addr}: the address is already in use (is the service \
                 or `orchestra up` already running?); stop the other process or set \
                 {variable} to a free address such as {}:{}",
                addr.ip(),
                addr.port().wrapping_add(100)
            ),
            std::io::ErrorKind::AddrNotAvailable => format!(
                "cannot listen on {addr}: no network interface of this machine has that \
                 address; set {variable} to one it has, such as 127.0.0.1:{}",
                addr.port()
            ),
            std::io::ErrorKind::PermissionDenied => format!(
                "cannot listen on {addr}: permission denied (ports below 1024 need \
                 privileges); set {variable} to a port above 1024"
            ),
            _ => format!("cannot listen on {addr}: {cause}; set {variable} to another address"),
        };
        ConfigError::new(variable, problem)
    }

    /// A folder the service must write could not be created.
    pub fn folder(variable: &str, path: &std::path::Path, cause: &std::io::Error) -> ConfigError {
        ConfigError::new(
            variable,
            format!(
                "cannot create the folder `{}`: {}; set {variable} to a folder this \
                 process may create and write",
                path.display(),
                describe_io(cause)
            ),
        )
    }
}

/// An I/O error in words, without Rust's `Os { code: … }` form.
fn describe_io(error: &std::io::Error) -> String {
    let text = error.to_string();
    // "No such file or directory (os error 2)" reads better without the code.
    match text.rsplit_once(" (os error ") {
        Some((words, _)) => words.to_lowercase(),
        None => text,
    }
}

/// One service's settings: a flat serde struct whose fields are read from
/// `PREFIX` + the field name in upper case.
pub trait Settings: DeserializeOwned {
    /// The prefix of every variable the service reads, such as
    /// `ORCHESTRA_SCHEDULER_`.
    const PREFIX: &'static str;

    /// Checks what serde cannot: values that parse but make no sense.
    fn validate(&self) -> Result<(), ConfigError>;

    /// Where the service's gRPC server listens (the `LISTEN_ADDR` field).
    fn listen_addr(&self) -> SocketAddr;

    /// The full name of one of this service's variables, from its field.
    fn variable(field: &str) -> String {
        format!("{}{}", Self::PREFIX, field.to_uppercase())
    }
}

/// Variables that share a service's prefix but belong to someone else, so
/// they are not typos: the CLI's `--review-server` is
/// `ORCHESTRA_REVIEW_SERVER`, under the review service's prefix.
pub const OTHER_PROGRAMS_VARIABLES: &[&str] = &["ORCHESTRA_REVIEW_SERVER"];

/// Reads and checks a service's settings from the process environment.
pub fn load<S: Settings>() -> Result<S, ConfigError> {
    load_from(std::env::vars())
}

/// Reads and checks a service's settings from the given variables, as
/// [`load`] does; for tests.
pub fn load_from<S: Settings>(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<S, ConfigError> {
    let settings: S = from_vars(S::PREFIX, vars)?;
    settings.validate()?;
    Ok(settings)
}

/// Reads `T` from the process environment, each field from `PREFIX` + the
/// field name in upper case; a variable under the prefix that names no
/// field is refused.
pub fn from_env<T: DeserializeOwned>(prefix: &str) -> Result<T, ConfigError> {
    from_vars(prefix, std::env::vars())
}

/// Reads `T` from the given variables, as [`from_env`] does; for tests.
pub fn from_vars<T: DeserializeOwned>(
    prefix: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let mut vars: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(key, _)| key.starts_with(prefix))
        .filter(|(key, _)| !OTHER_PROGRAMS_VARIABLES.contains(&key.as_str()))
        .collect();
    // Sorted, so that of two faults the same one is reported every time.
    vars.sort();
    if let Some(fields) = field_names::<T>() {
        refuse_unknown(prefix, fields, &vars)?;
    }
    envy::prefixed(prefix)
        .from_iter::<_, T>(vars.clone())
        .map_err(|error| {
            let mut described = describe(prefix, error);
            if described.variable.ends_with('*') {
                // Types that parse themselves (socket addresses, say) fail
                // without naming their field: find the variable whose
                // removal changes the outcome.
                if let Some((culprit, value)) = vars.iter().find(|(key, _)| {
                    let others = vars.iter().filter(|(k, _)| k != key).cloned();
                    envy::prefixed(prefix)
                        .from_iter::<_, T>(others)
                        .map_err(|e| describe(prefix, e).problem)
                        .err()
                        .as_deref()
                        != Some(described.problem.as_str())
                }) {
                    described.problem = format!("{} (got `{value}`)", described.problem);
                    described.variable = culprit.clone();
                }
            }
            described
        })
}

/// Refuses the first variable under the prefix that names no field,
/// suggesting the nearest known variable.
fn refuse_unknown(
    prefix: &str,
    fields: &[&str],
    vars: &[(String, String)],
) -> Result<(), ConfigError> {
    let known: Vec<String> = fields
        .iter()
        .map(|field| format!("{prefix}{}", field.to_uppercase()))
        .collect();
    for (key, _) in vars {
        if known.contains(key) {
            continue;
        }
        // A slip of the keyboard (a few letters off), or a name cut short
        // or run on (BLOB_DIRECTORY for BLOB_DIR).
        let nearest = known
            .iter()
            .map(|name| {
                let stem = key.len().min(name.len());
                let overlaps = stem > prefix.len() + 2 && key[..stem] == name[..stem];
                (
                    if overlaps {
                        0
                    } else {
                        edit_distance(key, name)
                    },
                    name,
                )
            })
            .min_by_key(|(distance, _)| *distance);
        let problem = match nearest {
            Some((distance, name))
                if distance <= 1.max(key.len().saturating_sub(prefix.len()) / 3) =>
            {
                format!("is not a setting of this service; did you mean {name}?")
            }
            _ => format!(
                "is not a setting of this service; its settings are {}",
                known.join(", ")
            ),
        };
        return Err(ConfigError::new(key.clone(), problem));
    }
    Ok(())
}

/// Levenshtein distance between two names, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// The field names of a struct that derives `Deserialize`, asked of serde
/// itself so the list of known variables cannot drift from the struct.
/// `None` for types that are not plain structs.
fn field_names<T: DeserializeOwned>() -> Option<&'static [&'static str]> {
    let mut fields = None;
    let _ = T::deserialize(FieldRecorder {
        fields: &mut fields,
    });
    fields
}

/// A deserializer that only records the fields a struct asks for.
struct FieldRecorder<'a> {
    fields: &'a mut Option<&'static [&'static str]>,
}

impl<'de> serde::Deserializer<'de> for FieldRecorder<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.fields = Some(fields);
        Err(serde::de::Error::custom("fields recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

fn describe(prefix: &str, error: envy::Error) -> ConfigError {
    match error {
        envy::Error::MissingValue(field) => ConfigError {
            variable: format!("{prefix}{}", field.to_uppercase()),
            problem: "is required but not set".to_owned(),
        },
        envy::Error::Custom(message) => {
            // envy says "<why> while parsing value '<v>' provided by <field>".
            match message.rsplit_once(" provided by ") {
                Some((why, field)) => ConfigError {
                    variable: format!("{prefix}{}", field.to_uppercase()),
                    problem: why.to_owned(),
                },
                None => ConfigError {
                    variable: format!("{prefix}*"),
                    problem: message,
                },
            }
        }
    }
}

/// Checks that a peer's URL is an `http://` or `https://` URL with a host,
/// as a gRPC channel needs.
pub fn check_url(variable: &str, url: &str) -> Result<(), ConfigError> {
    let refuse = |why: &str| {
        Err(ConfigError::new(
            variable,
            format!(
                "expected an http:// or https:// URL such as http://127.0.0.1:50051, got `{url}`{why}"
            ),
        ))
    };
    let uri: http::Uri = match url.parse() {
        Ok(uri) => uri,
        Err(e) => return refuse(&format!(" ({e})")),
    };
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => return refuse(&format!(" (the scheme is {other})")),
        None => return refuse(" (no scheme)"),
    }
    if uri.host().is_none_or(str::is_empty) {
        return refuse(" (no host)");
    }
    Ok(())
}

/// Checks that a count or duration is not zero, where zero would make the
/// service do nothing (no slots, leases that expire at once).
pub fn check_nonzero(variable: &str, value: u64, meaning: &str) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::new(
            variable,
            format!("must be at least 1 ({meaning}), got 0"),
        ));
    }
    Ok(())
}

/// Checks that a value is at least `minimum`, saying why.
pub fn check_at_least(
    variable: &str,
    value: u64,
    minimum: u64,
    why: &str,
) -> Result<(), ConfigError> {
    if value < minimum {
        return Err(ConfigError::new(
            variable,
            format!("must be at least {minimum} ({why}), got {value}"),
        ));
    }
    Ok(())
}

/// A database URL with its password replaced by `***`, fit to print.
pub fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The credentials end at the last `@` before the path.
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Sample {
        port: u16,
        #[serde(default = "default_addr")]
        addr: std::net::SocketAddr,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        database_url: String,
    }

    fn default_addr() -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], 1))
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_value_that_parses_itself_is_still_named() {
        let err = from_vars::<Sample>(
            "APP_",
            vars(&[("APP_PORT", "7"), ("APP_ADDR", "localhost-ish")]),
        )
        .expect_err("not a socket address");
        assert_eq!(err.variable, "APP_ADDR");
        assert!(err.problem.contains("localhost-ish"), "{}", err.problem);
    }

    #[test]
    fn reads_prefixed_variables() {
        let sample: Sample =
            from_vars("APP_", vars(&[("APP_PORT", "7"), ("OTHER_PORT", "9")])).expect("valid");
        assert_eq!(sample.port, 7);
        assert_eq!(sample.name, None);
        assert_eq!(sample.addr, default_addr());
        assert_eq!(sample.database_url, "");
    }

    #[test]
    fn a_missing_variable_is_named_in_full() {
        let err = from_vars::<Sample>("APP_", vars(&[])).expect_err("port is required");
        assert_eq!(err.variable, "APP_PORT");
        assert!(err.to_string().contains("APP_PORT: is required"), "{err}");
    }

    #[test]
    fn a_bad_value_names_the_variable_and_the_fault() {
        let err =
            from_vars::<Sample>("APP_", vars(&[("APP_PORT", "lots")])).expect_err("not a number");
        assert_eq!(err.variable, "APP_PORT");
        assert!(err.problem.contains("lots"), "{}", err.problem);
    }

    #[test]
    fn the_fields_come_from_serde() {
        assert_eq!(
            field_names::<Sample>(),
            Some(&["port", "addr", "name", "database_url"][..])
        );
        assert_eq!(field_names::<u32>(), None);
    }

    #[test]
    fn a_typo_names_the_nearest_variable() {
        let err = from_vars::<Sample>(
            "APP_",
            vars(&[("APP_PORT", "7"), ("APP_DATABSE_URL", "sqlite://x")]),
        )
        .expect_err("typo");
        assert_eq!(err.variable, "APP_DATABSE_URL");
        assert!(
            err.problem.contains("did you mean APP_DATABASE_URL?"),
            "{}",
            err.problem
        );
    }

    #[test]
    fn a_name_run_on_names_the_one_it_starts_with() {
        let err = from_vars::<Sample>(
            "APP_",
            vars(&[("APP_PORT", "7"), ("APP_ADDRESS", "127.0.0.1:1")]),
        )
        .expect_err("unknown");
        assert!(
            err.problem.contains("did you mean APP_ADDR?"),
            "{}",
            err.problem
        );
    }

    #[test]
    fn a_short_unknown_name_is_not_matched_to_an_unrelated_one() {
        let err = from_vars::<Sample>("APP_", vars(&[("APP_PORT", "7"), ("APP_FOO", "1")]))
            .expect_err("unknown");
        assert!(err.problem.contains("its settings are"), "{}", err.problem);
    }

    #[test]
    fn an_unknown_variable_far_from_any_lists_them_all() {
        let err = from_vars::<Sample>(
            "APP_",
            vars(&[("APP_PORT", "7"), ("APP_COMPLETELY_DIFFERENT", "1")]),
        )
        .expect_err("unknown");
        assert_eq!(err.variable, "APP_COMPLETELY_DIFFERENT");
        assert!(
            err.problem
                .contains("APP_PORT, APP_ADDR, APP_NAME, APP_DATABASE_URL"),
            "{}",
            err.problem
        );
    }

    #[test]
    fn another_programs_variable_under_the_prefix_is_not_a_typo() {
        let sample: Sample = from_vars(
            "ORCHESTRA_REVIEW_",
            vars(&[
                ("ORCHESTRA_REVIEW_PORT", "7"),
                ("ORCHESTRA_REVIEW_SERVER", "http://elsewhere:1"),
            ]),
        )
        .expect("the CLI's variable is not the service's concern");
        assert_eq!(sample.port, 7);
    }

    #[test]
    fn urls_must_be_http_with_a_host() {
        for good in ["http://127.0.0.1:50051", "https://orchestra.example"] {
            check_url("V", good).expect(good);
        }
        for bad in [
            "",
            "not-a-url",
            "ftp://x",
            "localhost:1",
            "http://",
            "http:///x",
        ] {
            let err = check_url("V", bad).expect_err(bad);
            assert_eq!(err.variable, "V");
            assert!(err.problem.contains("http://"), "{}", err.problem);
            assert!(err.problem.contains(&format!("`{bad}`")), "{}", err.problem);
        }
    }

    #[test]
    fn zero_is_refused_with_its_meaning() {
        check_nonzero("V", 1, "x").expect("one");
        let err = check_nonzero("V", 0, "phases run at once").expect_err("zero");
        assert_eq!(
            err.problem,
            "must be at least 1 (phases run at once), got 0"
        );
        let err = check_at_least("V", 10, 1024, "a message needs room").expect_err("small");
        assert!(err.problem.contains("at least 1024"), "{}", err.problem);
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            mask_password("postgres://orchestra:s3cret@db:5432/x"),
            "postgres://orchestra:***@db:5432/x"
        );
        assert_eq!(
            mask_password("postgres://postgres@127.0.0.1:1/x"),
            "postgres://postgres@127.0.0.1:1/x"
        );
        assert_eq!(mask_password("sqlite://a@b/c.db"), "sqlite://a@b/c.db");
        assert_eq!(mask_password("nonsense"), "nonsense");
        let err = ConfigError::database("V", "postgres://u:pw@h/d", &"refused");
        assert!(!err.to_string().contains("pw"), "{err}");
        assert!(err.to_string().contains("postgres://u:***@h/d"), "{err}");
    }

    #[test]
    fn io_errors_read_without_rust_debug() {
        let cause = std::io::Error::from(std::io::ErrorKind::NotFound);
        let err = ConfigError::folder("V", std::path::Path::new("/proc/nope"), &cause);
        assert!(!err.problem.contains("Os {"), "{}", err.problem);
        assert!(err.problem.contains("/proc/nope"), "{}", err.problem);
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("DATABSE_URL", "DATABASE_URL"), 1);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
