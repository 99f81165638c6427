//! Typed configuration read from environment variables with one prefix per
//! service (`ORCHESTRA_SCHEDULER_`, …). A bad or missing variable stops
//! start-up with a message that names the variable and what it expects.

use serde::de::DeserializeOwned;

/// A variable that is missing or cannot be parsed.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {variable}: {problem}")]
pub struct ConfigError {
    /// The full variable name, prefix included.
    pub variable: String,
    /// What is wrong and what is expected.
    pub problem: String,
}

/// Reads `T` from the process environment, each field from `PREFIX` + the
/// field name in upper case.
pub fn from_env<T: DeserializeOwned>(prefix: &str) -> Result<T, ConfigError> {
    from_vars(prefix, std::env::vars())
}

/// Reads `T` from the given variables, as [`from_env`] does; for tests.
pub fn from_vars<T: DeserializeOwned>(
    prefix: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let vars: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(key, _)| key.starts_with(prefix))
        .collect();
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
    }

    fn default_addr() -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], 1))
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

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn reads_prefixed_variables() {
        let sample: Sample =
            from_vars("APP_", vars(&[("APP_PORT", "7"), ("OTHER_PORT", "9")])).expect("valid");
        assert_eq!(sample.port, 7);
        assert_eq!(sample.name, None);
        assert_eq!(sample.addr, default_addr());
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
}
