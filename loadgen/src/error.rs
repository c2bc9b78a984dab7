//! The load generator's error type and its exit codes.

/// Everything that can stop a load run before it produces a report.
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    /// A flag or a resolved setting is out of range; `key` names it (`rate_dps (--rate)`).
    #[error("invalid {key}: {message}")]
    Invalid {
        /// The setting, as profile key and flag.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// A profile file does not parse or holds a bad value; `key` is its path in the YAML.
    #[error("profile {origin}: {key}: {message}")]
    Profile {
        /// The file (or built-in name) the profile came from.
        origin: String,
        /// Dotted key path inside the profile, e.g. `series.churn_per_sec`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// `--profile NAME` matched no file and no built-in profile.
    #[error("profile {name:?} not found (tried {tried})")]
    ProfileNotFound {
        /// The name or path given.
        name: String,
        /// The paths looked at.
        tried: String,
    },
    /// A profile file exists but cannot be read.
    #[error("cannot read profile {path}")]
    ProfileRead {
        /// The file.
        path: String,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// Nothing listens at the endpoint (or it cannot be resolved).
    #[error("cannot connect to {endpoint}: {message}")]
    Connect {
        /// The endpoint URL.
        endpoint: String,
        /// Why the connection failed.
        message: String,
    },
    /// The tokio runtime could not be started.
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    /// A transport client could not be built.
    #[error("cannot build the {protocol} client: {message}")]
    Client {
        /// `grpc` or `http`.
        protocol: &'static str,
        /// The cause.
        message: String,
    },
}

impl LoadgenError {
    /// True for mistakes in flags or profiles (exit code 1), false for runtime failures.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Self::Invalid { .. }
                | Self::Profile { .. }
                | Self::ProfileNotFound { .. }
                | Self::ProfileRead { .. }
        )
    }

    /// The process exit code for this error: 1 for bad arguments or profiles, 2 otherwise.
    pub fn exit_code(&self) -> u8 {
        if self.is_user_error() {
            1
        } else {
            2
        }
    }

    /// Builds an [`LoadgenError::Invalid`].
    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Result with [`LoadgenError`] as the default error.
pub type Result<T, E = LoadgenError> = std::result::Result<T, E>;
