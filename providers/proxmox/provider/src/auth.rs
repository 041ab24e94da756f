//! Where the connection settings come from: the provider block, else the environment
//! variables that users of bpg/terraform-provider-proxmox already set. Secrets (the API
//! token's secret, the password) are kept here and never put in a message.

use ballast_sdk::{ProviderError, Value};
use std::path::{Path, PathBuf};

/// Provider block attribute → environment variable (bpg/terraform-provider-proxmox's).
pub const ENV: [(&str, &str); 5] = [
    ("endpoint", "PROXMOX_VE_ENDPOINT"),
    ("api_token", "PROXMOX_VE_API_TOKEN"),
    ("username", "PROXMOX_VE_USERNAME"),
    ("password", "PROXMOX_VE_PASSWORD"),
    ("insecure", "PROXMOX_VE_INSECURE"),
];

/// The variables of the other Terraform provider for Proxmox (Telmate's), read when bpg's
/// are not set. Its token comes in two variables, `PM_API_TOKEN_ID` and
/// `PM_API_TOKEN_SECRET`, joined as `ID=SECRET`.
pub const TELMATE_ENV: [(&str, &str); 4] = [
    ("endpoint", "PM_API_URL"),
    ("username", "PM_USER"),
    ("password", "PM_PASS"),
    ("insecure", "PM_TLS_INSECURE"),
];

#[derive(Clone)]
pub enum Credentials {
    /// `user@realm!tokenid` and its secret.
    Token { id: String, secret: String },
    /// A user and password, exchanged for a ticket.
    Password { username: String, password: String },
}

/// Resolved settings.
#[derive(Clone)]
pub struct Settings {
    /// `https://host:8006`, without `/api2/json` and without a trailing slash.
    pub endpoint: String,
    pub credentials: Credentials,
    pub insecure: bool,
    pub ca_file: Option<PathBuf>,
    /// The SHA-256 fingerprint of the server's certificate, when pinned.
    pub fingerprint: Option<[u8; 32]>,
    /// The node VMs go to when a resource names none.
    pub node: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("endpoint", &self.endpoint)
            .field("who", &self.who())
            .field("insecure", &self.insecure)
            .field("ca_file", &self.ca_file)
            .field(
                "fingerprint",
                &self.fingerprint.map(|f| hex_fingerprint(&f)),
            )
            .field("node", &self.node)
            .finish()
    }
}

impl Settings {
    /// Who is calling, for messages: never a secret.
    pub fn who(&self) -> String {
        match &self.credentials {
            Credentials::Token { id, .. } => format!("API token {id}"),
            Credentials::Password { username, .. } => format!("user {username}"),
        }
    }

    /// The secrets, for scrubbing server answers before they go into a message.
    pub fn secrets(&self) -> Vec<&str> {
        let s = match &self.credentials {
            Credentials::Token { secret, .. } => secret.as_str(),
            Credentials::Password { password, .. } => password.as_str(),
        };
        if s.len() >= 4 {
            vec![s]
        } else {
            Vec::new()
        }
    }

    /// `text` with every secret replaced.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in self.secrets() {
            out = out.replace(s, "(redacted)");
        }
        out
    }
}

fn truthy(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

/// Resolves the settings: each attribute from the block, else its environment variable.
/// Credentials come as a whole from one source: when the block sets any of `api_token`,
/// `username`, `password`, the environment's credentials are not looked at.
pub fn resolve(
    block: &Value,
    env: &dyn Fn(&str) -> Option<String>,
    dir: &Path,
) -> Result<Settings, ProviderError> {
    let block_str = |k: &str| {
        block
            .get(k)
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let set = |var: &str| env(var).filter(|s| !s.is_empty());
    // The value of attribute `k` from the environment, with the variable it came from.
    let env_var = |k: &str| -> Option<(String, String)> {
        let of = |vars: &[(&str, &str)]| {
            vars.iter()
                .find(|(a, _)| *a == k)
                .and_then(|(_, var)| Some((set(var)?, var.to_string())))
        };
        of(&ENV).or_else(|| of(&TELMATE_ENV)).or_else(|| {
            let (id, secret) = (set("PM_API_TOKEN_ID")?, set("PM_API_TOKEN_SECRET")?);
            (k == "api_token").then(|| (format!("{id}={secret}"), "PM_API_TOKEN_ID".into()))
        })
    };
    let env_of = |k: &str| env_var(k).map(|(v, _)| v);
    let endpoint = block_str("endpoint")
        .or_else(|| env_of("endpoint"))
        .ok_or_else(|| {
            ProviderError::invalid_config(
                "the proxmox provider needs the API endpoint",
                "set endpoint = \"https://pve.example.com:8006\" or PROXMOX_VE_ENDPOINT",
            )
        })?;
    let endpoint = normalise_endpoint(&endpoint)?;
    let creds_in_block = ["api_token", "username", "password"]
        .iter()
        .any(|k| block_str(k).is_some());
    let cred = |k: &str| {
        if creds_in_block {
            block_str(k)
        } else {
            env_of(k)
        }
    };
    let credentials = match (cred("api_token"), cred("username"), cred("password")) {
        (Some(token), _, _) => {
            let (id, secret) = token.split_once('=').ok_or_else(|| {
                ProviderError::invalid_config(
                    "api_token must be USER@REALM!TOKENID=SECRET",
                    "it has no '=' between the token ID and its secret",
                )
            })?;
            if !id.contains('@') || !id.contains('!') || secret.is_empty() {
                return Err(ProviderError::invalid_config(
                    format!(
                        "api_token must be USER@REALM!TOKENID=SECRET (the ID given is \"{id}\")"
                    ),
                    "for example root@pam!ballast=aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
                ));
            }
            Credentials::Token {
                id: id.to_string(),
                secret: secret.to_string(),
            }
        }
        (None, Some(username), Some(password)) => Credentials::Password {
            username: if username.contains('@') {
                username
            } else {
                format!("{username}@pam")
            },
            password,
        },
        (None, Some(u), None) => {
            return Err(ProviderError::invalid_config(
                format!("username \"{u}\" is set but no password"),
                "set password (or PROXMOX_VE_PASSWORD), or use api_token",
            ))
        }
        (None, None, _) => {
            return Err(ProviderError::invalid_config(
                "the proxmox provider needs credentials",
                "set api_token (or PROXMOX_VE_API_TOKEN), or username and password \
                 (or PROXMOX_VE_USERNAME and PROXMOX_VE_PASSWORD)",
            ))
        }
    };
    let insecure = match block.get("insecure") {
        Value::Bool(b) => *b,
        _ => match env_var("insecure") {
            Some((s, var)) => truthy(&s).ok_or_else(|| {
                ProviderError::invalid_config(format!("{var} is \"{s}\""), "use true or false")
            })?,
            None => false,
        },
    };
    let ca_file = block_str("ca_file").map(|f| {
        let p = PathBuf::from(f);
        if p.is_relative() {
            dir.join(p)
        } else {
            p
        }
    });
    let fingerprint = block_str("fingerprint")
        .map(|f| parse_fingerprint(&f))
        .transpose()?;
    if fingerprint.is_some() && (insecure || ca_file.is_some()) {
        return Err(ProviderError::invalid_config(
            "fingerprint pins the server's certificate: it cannot go with insecure or ca_file",
            "choose one way to trust the server",
        ));
    }
    Ok(Settings {
        endpoint,
        credentials,
        insecure,
        ca_file,
        fingerprint,
        node: block_str("node"),
    })
}

/// `AB:CD:...` (32 bytes, as `pvenode cert info` shows it) or the same without colons.
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], ProviderError> {
    let hex: String = text.chars().filter(|c| *c != ':').collect();
    let bad = || {
        ProviderError::invalid_config(
            format!("the fingerprint \"{text}\" is not a SHA-256 fingerprint"),
            "give 32 bytes in hex, for example AB:CD:...:EF (see `pvenode cert info`)",
        )
    };
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// `AB:CD:...`
pub fn hex_fingerprint(f: &[u8]) -> String {
    f.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `https://host:8006/`, `https://host:8006/api2/json` → `https://host:8006`.
fn normalise_endpoint(raw: &str) -> Result<String, ProviderError> {
    let e = raw.trim().trim_end_matches('/');
    let e = e
        .strip_suffix("/api2/json")
        .unwrap_or(e)
        .trim_end_matches('/');
    let url = reqwest::Url::parse(e).map_err(|err| {
        ProviderError::invalid_config(
            format!("the endpoint \"{raw}\" is not a URL"),
            err.to_string(),
        )
    })?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(ProviderError::invalid_config(
            format!("the endpoint \"{raw}\" is not an http(s) URL"),
            "for example https://pve.example.com:8006",
        ));
    }
    Ok(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn the_block_wins_over_the_environment_and_credentials_come_from_one_place() {
        let e = env(&[
            ("PROXMOX_VE_ENDPOINT", "https://env:8006/"),
            ("PROXMOX_VE_API_TOKEN", "root@pam!env=envsecret"),
            ("PROXMOX_VE_INSECURE", "true"),
        ]);
        let block = Value::map([
            ("endpoint", Value::from("https://block:8006/api2/json")),
            ("username", Value::from("admin")),
            ("password", Value::from("hunter22")),
        ]);
        let s = resolve(&block, &e, Path::new("/")).unwrap();
        assert_eq!(s.endpoint, "https://block:8006");
        assert!(s.insecure);
        assert_eq!(s.who(), "user admin@pam");
        assert_eq!(s.scrub("x hunter22 y"), "x (redacted) y");
        let s = resolve(
            &Value::map([("insecure", Value::Bool(false))]),
            &e,
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(s.endpoint, "https://env:8006");
        assert!(!s.insecure);
        assert_eq!(s.who(), "API token root@pam!env");
        assert!(!format!("{s:?}").contains("envsecret"));
    }

    /// Users of Telmate's provider have PM_* set: read when bpg's variables are not.
    #[test]
    fn telmates_variables_are_read_after_bpgs() {
        let e = env(&[
            ("PM_API_URL", "https://telmate:8006/api2/json"),
            ("PM_API_TOKEN_ID", "terraform@pve!tf"),
            ("PM_API_TOKEN_SECRET", "tmsecret-0000"),
            ("PM_TLS_INSECURE", "1"),
        ]);
        let s = resolve(&Value::Map(Default::default()), &e, Path::new("/")).unwrap();
        assert_eq!(s.endpoint, "https://telmate:8006");
        assert_eq!(s.who(), "API token terraform@pve!tf");
        assert_eq!(s.secrets(), vec!["tmsecret-0000"]);
        assert!(s.insecure);
        let e = env(&[
            ("PROXMOX_VE_ENDPOINT", "https://bpg:8006"),
            ("PM_API_URL", "https://telmate:8006/api2/json"),
            ("PM_USER", "ops@pve"),
            ("PM_PASS", "hunter22"),
            ("PM_TLS_INSECURE", "maybe"),
        ]);
        let err = resolve(&Value::Map(Default::default()), &e, Path::new("/")).unwrap_err();
        assert!(
            err.message.contains("PM_TLS_INSECURE is \"maybe\""),
            "{err}"
        );
        let s = resolve(
            &Value::map([("insecure", Value::Bool(false))]),
            &e,
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(s.endpoint, "https://bpg:8006");
        assert_eq!(s.who(), "user ops@pve");
    }

    #[test]
    fn bad_settings_are_explained_without_the_secret() {
        let e = env(&[]);
        let err = resolve(
            &Value::map([("api_token", Value::from("x"))]),
            &e,
            Path::new("/"),
        )
        .unwrap_err();
        assert!(err.message.contains("endpoint"), "{err}");
        let block = Value::map([
            ("endpoint", Value::from("https://h:8006")),
            ("api_token", Value::from("root@pam-nosecret")),
        ]);
        let err = resolve(&block, &e, Path::new("/")).unwrap_err();
        assert!(err.message.contains("USER@REALM!TOKENID=SECRET"), "{err}");
    }

    #[test]
    fn fingerprints_parse_with_or_without_colons() {
        let f = "ab:".repeat(31) + "ab";
        assert_eq!(parse_fingerprint(&f).unwrap(), [0xab; 32]);
        assert_eq!(parse_fingerprint(&"AB".repeat(32)).unwrap(), [0xab; 32]);
        assert!(parse_fingerprint("AB:CD").is_err());
        assert_eq!(hex_fingerprint(&[1, 0xff]), "01:FF");
    }
}
