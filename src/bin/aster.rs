//! `aster`: the offline trust commands of `aster-cli` 0.1.2 for aster-rs.
//!
//! ```text
//! aster trust keygen [--out-key PATH]
//! aster trust sign --root-key PATH [--type producer|policy|ott] [--endpoint-id HEX]
//!                  [--attributes JSON] [-a KEY=VALUE]... [--expires WHEN] [--out PATH]
//! aster trust verify --root-pub PATH [--endpoint-id HEX] [--now EPOCH_SECS] CREDENTIAL_FILE
//! ```
//!
//! The files are the CLI's: `keygen` writes `{"private_key", "public_key"}` (mode 0600) and
//! `<name>.pub`, and refuses to run if either exists; `sign` writes the credential JSON byte for byte as
//! `aster trust sign` does. `verify` (not in the Python CLI) checks a credential file — JSON
//! from either CLI, or an `.aster-identity` file — against a root public key, as a node's
//! admission would (except OTT nonce consumption and IID). Argument parsing is std-only.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aster::runtime::trust::credential::DEFAULT_VALIDITY_SECS;
use aster::runtime::trust::identity::IdentityPeer;
use aster::runtime::trust::keys::{load_public_key_file, public_key_path};
use aster::runtime::trust::{
    ConsumerCredential, ConsumerGate, ConsumerVerdict, EnrollmentCredential, IdentityFile, InMemoryNonceStore,
    ProducerGate, PublicKey, RootKeyFile, now_secs,
};

const USAGE: &str = "\
usage: aster trust <command> [options]

commands:
  keygen   generate an ed25519 root key pair
             --out-key PATH      key file (default ~/.aster/root.key); the public key goes
                                 next to it as <name>.pub (neither may exist yet)
  sign     sign an enrollment credential offline
             --root-key PATH     root key file (from keygen)
             --type T            producer (default), policy or ott
             --endpoint-id HEX   node the credential is bound to (required for producer)
             --attributes JSON   attributes as a JSON object of strings
             -a, --attr K=V      one attribute (repeatable; overrides --attributes)
             --expires WHEN      ISO 8601 (2026-01-01T00:00:00Z; no zone = UTC) or epoch
                                 seconds (default: in 30 days)
             --out PATH          output file (default .aster/credential.json)
  verify   check a credential file against a root public key
             --root-pub PATH     root public key file (JSON, bare hex, or the key file)
             --endpoint-id HEX   the node presenting it (default: not checked)
             --now EPOCH_SECS    check expiry at this time (default: now)
             CREDENTIAL_FILE     JSON (either CLI) or .aster-identity

exit status: 0 success / valid, 1 failure / invalid, 2 usage error";

/// `println!` that ignores a closed stdout (`aster trust verify … | head -1`).
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// A command-line error: a usage error (exit 2) or a failure (exit 1).
enum CliError {
    Usage(String),
    Failed(String),
}

type CliResult<T> = Result<T, CliError>;

fn usage<T>(msg: impl Into<String>) -> CliResult<T> {
    Err(CliError::Usage(msg.into()))
}

fn failed(msg: impl std::fmt::Display) -> CliError {
    CliError::Failed(msg.to_string())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(CliError::Usage(msg)) => {
            eprintln!("error: {msg}\n\n{USAGE}");
            ExitCode::from(2)
        }
        Err(CliError::Failed(msg)) => {
            eprintln!("Error: {msg}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &[String]) -> CliResult<ExitCode> {
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] | ["-h" | "--help" | "help", ..] | ["trust"] | ["trust", "-h" | "--help" | "help", ..] => {
            say!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        ["-V" | "--version", ..] => {
            say!("aster (aster-rs) {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        ["trust", "keygen", ..] => keygen(&Options::parse(&args[2..], &["--out-key"])?),
        ["trust", "sign", ..] => sign(&Options::parse(
            &args[2..],
            &["--root-key", "--type", "--endpoint-id", "--attributes", "-a", "--attr", "--expires", "--out"],
        )?),
        ["trust", "verify", ..] => verify(&Options::parse(&args[2..], &["--root-pub", "--endpoint-id", "--now"])?),
        ["trust", other, ..] => usage(format!("unknown trust command {other:?}")),
        [other, ..] => usage(format!("unknown command {other:?} (only `trust` is implemented)")),
    }
}

// ───────────────────────────── argument parsing ─────────────────────────────

/// Parsed `--name value` options (each option takes a value; `--name=value` works too) and
/// positional arguments.
struct Options {
    values: Vec<(String, String)>,
    positional: Vec<String>,
}

impl Options {
    fn parse(args: &[String], known: &[&str]) -> CliResult<Options> {
        let mut out = Options { values: Vec::new(), positional: Vec::new() };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            if arg == "--" {
                out.positional.extend(it.by_ref().cloned());
                break;
            }
            if !arg.starts_with('-') || arg == "-" {
                out.positional.push(arg.clone());
                continue;
            }
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
                _ => (arg.as_str(), None),
            };
            if !known.contains(&name) {
                return usage(format!("unknown option {name}"));
            }
            let value = match inline {
                Some(v) => v,
                None => match it.next() {
                    Some(v) => v.clone(),
                    None => return usage(format!("{name} needs a value")),
                },
            };
            out.values.push((name.to_owned(), value));
        }
        Ok(out)
    }

    /// The last value of any of `names`.
    fn get(&self, names: &[&str]) -> Option<&str> {
        self.values.iter().rev().find(|(n, _)| names.contains(&n.as_str())).map(|(_, v)| v.as_str())
    }

    /// Every value of any of `names`, in order.
    fn all(&self, names: &[&str]) -> impl Iterator<Item = &str> {
        self.values.iter().filter(move |(n, _)| names.contains(&n.as_str())).map(|(_, v)| v.as_str())
    }

    fn no_positional(&self) -> CliResult<()> {
        match self.positional.first() {
            Some(p) => usage(format!("unexpected argument {p:?}")),
            None => Ok(()),
        }
    }
}

/// `~/…` expanded with `$HOME`, like Python's `os.path.expanduser`.
fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ if p == "~" => std::env::var_os("HOME").map_or_else(|| PathBuf::from(p), PathBuf::from),
        _ => PathBuf::from(p),
    }
}

fn create_parent(path: &Path) -> CliResult<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            fs::create_dir_all(dir).map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))
        }
        _ => Ok(()),
    }
}

// ───────────────────────────── keygen ─────────────────────────────

fn keygen(opts: &Options) -> CliResult<ExitCode> {
    opts.no_positional()?;
    let out = expand_home(opts.get(&["--out-key"]).unwrap_or("~/.aster/root.key"));
    let pub_path = public_key_path(&out);
    // Both files are checked before anything is written: a `.pub` left over from another key
    // would otherwise sit next to the new key and name the wrong root.
    for (what, path) in [("key file", &out), ("public key file", &pub_path)] {
        if path.exists() {
            return Err(failed(format!(
                "{what} already exists: {}\nUse a different path or remove the existing file.",
                path.display()
            )));
        }
    }
    create_parent(&out)?;
    let key = RootKeyFile::generate();
    key.write_new(&out).map_err(failed)?;
    say!("Root private key written to: {}", out.display());
    say!("Root public key written to:  {}", pub_path.display());
    say!("  Public key:  {}", key.public_key().to_hex());
    say!("Keep root.key secret. Share root.pub with nodes that need to verify credentials.");
    Ok(ExitCode::SUCCESS)
}

// ───────────────────────────── sign ─────────────────────────────

fn sign(opts: &Options) -> CliResult<ExitCode> {
    opts.no_positional()?;
    let Some(root_path) = opts.get(&["--root-key"]) else {
        return usage("--root-key is required");
    };
    let root = RootKeyFile::load(expand_home(root_path)).map_err(|e| failed(format!("invalid key file: {e}")))?;
    let kind = opts.get(&["--type"]).unwrap_or("producer");
    let mut attributes: BTreeMap<String, String> = match opts.get(&["--attributes"]) {
        Some(json) => serde_json::from_str(json)
            .map_err(|e| failed(format!("invalid --attributes JSON (an object of strings): {e}")))?,
        None => BTreeMap::new(),
    };
    for kv in opts.all(&["-a", "--attr"]) {
        let Some((k, v)) = kv.split_once('=') else {
            return usage(format!("attribute {kv:?} is not KEY=VALUE"));
        };
        attributes.insert(k.to_owned(), v.to_owned());
    }
    let expires_at = match opts.get(&["--expires"]) {
        Some(text) => parse_expiry(text).map_err(|e| failed(format!("invalid --expires: {e}")))?,
        None => now_secs() + DEFAULT_VALIDITY_SECS,
    };
    let endpoint = opts
        .get(&["--endpoint-id"])
        .map(|h| PublicKey::from_hex(h.trim()).map_err(|e| failed(format!("invalid --endpoint-id: {e}"))))
        .transpose()?;
    let root_pub = root.public_key();
    let text = match kind {
        "producer" => {
            let Some(endpoint) = endpoint else {
                return Err(failed("--endpoint-id is required for producer credentials"));
            };
            EnrollmentCredential::new(&endpoint, root_pub, expires_at, attributes).signed(&root.secret).to_cli_json()
        }
        "policy" | "ott" => {
            let cred = if kind == "ott" {
                ConsumerCredential::ott(root_pub, expires_at, attributes)
            } else {
                ConsumerCredential::policy(root_pub, expires_at, attributes)
            };
            let cred = match endpoint {
                Some(e) => cred.with_endpoint_id(&e),
                None => cred,
            };
            cred.signed(&root.secret).to_cli_json()
        }
        other => return usage(format!("unknown credential type {other:?}; use producer, policy, ott")),
    };
    let out = expand_home(opts.get(&["--out"]).unwrap_or(".aster/credential.json"));
    create_parent(&out)?;
    write_private(&out, &text).map_err(|e| failed(format!("cannot write {}: {e}", out.display())))?;
    say!("Signed credential written to: {}", out.display());
    say!("  Type:       {kind}");
    say!("  Expires at: {}", iso_utc(expires_at));
    Ok(ExitCode::SUCCESS)
}

/// Writes `text` to `path` (replacing it, like the Python CLI); a new file is created
/// owner-only on Unix, since an unbound credential is a bearer secret.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

// ───────────────────────────── verify ─────────────────────────────

/// One credential found in a file.
enum Found {
    Consumer(ConsumerCredential),
    Producer(EnrollmentCredential),
}

fn read_credentials(text: &str) -> Result<Vec<(String, Found)>, String> {
    let t = text.trim();
    if t.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(t).map_err(|e| format!("malformed JSON: {e}"))?;
        let kind = v.get("credential_type").or_else(|| v.get("type")).and_then(|k| k.as_str());
        // A producer credential has no consumer type (the wire form has no type at all).
        let found = if kind.is_none_or(|k| k == "producer") {
            Found::Producer(EnrollmentCredential::from_json(t).map_err(|e| e.to_string())?)
        } else {
            Found::Consumer(ConsumerCredential::from_json(t).map_err(|e| e.to_string())?)
        };
        return Ok(vec![("credential".into(), found)]);
    }
    let id = IdentityFile::parse(t).map_err(|e| e.to_string())?;
    if id.peers.is_empty() {
        return Err("the identity file has no [[peers]] entries".into());
    }
    id.peers
        .iter()
        .map(|p: &IdentityPeer| {
            let label = format!("peer {:?}", p.name.as_deref().unwrap_or("?"));
            let found = if p.role.as_deref() == Some("producer") {
                Found::Producer(p.to_enrollment_credential().map_err(|e| e.to_string())?)
            } else {
                Found::Consumer(p.to_consumer_credential().map_err(|e| e.to_string())?)
            };
            Ok((label, found))
        })
        .collect()
}

fn verify(opts: &Options) -> CliResult<ExitCode> {
    let [file] = opts.positional.as_slice() else {
        return usage("verify takes exactly one CREDENTIAL_FILE");
    };
    let Some(root_path) = opts.get(&["--root-pub"]) else {
        return usage("--root-pub is required");
    };
    let root = load_public_key_file(expand_home(root_path))
        .map_err(|e| failed(format!("cannot read the root public key: {e}")))?;
    let presenter = opts
        .get(&["--endpoint-id"])
        .map(|h| PublicKey::from_hex(h.trim()).map_err(|e| failed(format!("invalid --endpoint-id: {e}"))))
        .transpose()?;
    let now = match opts.get(&["--now"]) {
        Some(n) => n.trim().parse::<u64>().map_err(|e| failed(format!("invalid --now: {e}")))?,
        None => now_secs(),
    };
    let path = expand_home(file);
    let text = fs::read_to_string(&path).map_err(|e| failed(format!("{}: {e}", path.display())))?;
    let creds = read_credentials(&text).map_err(|e| failed(format!("{}: {e}", path.display())))?;
    let mut all_valid = true;
    for (label, found) in creds {
        let outcome = match &found {
            Found::Consumer(c) => {
                // Unbound, or no presenter given: the binding is not checked.
                let bound = c.endpoint_id.as_deref().and_then(|e| PublicKey::from_hex(e).ok());
                let peer = presenter.or(bound).unwrap_or(root);
                ConsumerGate::new(root).check_credential(c, "", &peer, now, &InMemoryNonceStore::new()).map(|v| match v
                {
                    ConsumerVerdict::Admitted(_) => None,
                    ConsumerVerdict::IidRequired(p) => {
                        Some(format!("needs an instance-identity check ({}) at admission", p.provider()))
                    }
                })
            }
            Found::Producer(c) => {
                let peer = presenter.or_else(|| PublicKey::from_hex(&c.endpoint_id).ok()).unwrap_or(root);
                ProducerGate::new(root).check_credential(c, &peer, now).map(|_| None)
            }
        };
        match outcome {
            Ok(note) => {
                describe(&label, &found, "valid");
                if let Some(n) = note {
                    say!("  note:        {n}");
                }
            }
            Err(reason) => {
                all_valid = false;
                describe(&label, &found, "INVALID");
                say!("  reason:      {}", reason.log_message());
            }
        }
    }
    Ok(if all_valid { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn describe(label: &str, found: &Found, verdict: &str) {
    let (kind, root, expires_at, attributes, endpoint, nonce) = match found {
        Found::Consumer(c) => (
            c.credential_type.as_str(),
            c.root_pubkey,
            c.expires_at,
            &c.attributes,
            c.endpoint_id.clone(),
            c.nonce.map(|n| n.iter().map(|b| format!("{b:02x}")).collect::<String>()),
        ),
        Found::Producer(c) => {
            ("producer", c.root_pubkey, c.expires_at, &c.attributes, Some(c.endpoint_id.clone()), None)
        }
    };
    say!("{label}: {verdict} ({kind})");
    say!("  root_pubkey: {}", root.to_hex());
    say!("  expires_at:  {expires_at} ({})", iso_utc(expires_at));
    say!("  attributes:  {}", serde_json::to_string(attributes).unwrap_or_default());
    say!("  endpoint_id: {}", endpoint.as_deref().unwrap_or("(not bound)"));
    if let Some(n) = nonce {
        say!("  nonce:       {n} (one-time token; consumption is checked at admission only)");
    }
}

// ───────────────────────────── time ─────────────────────────────

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (`civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Epoch seconds as Python's `datetime.fromtimestamp(t, tz=timezone.utc).isoformat()`.
fn iso_utc(t: u64) -> String {
    let t = i64::try_from(t).unwrap_or(i64::MAX);
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00", secs / 3600, secs % 3600 / 60, secs % 60)
}

fn number(s: &str, what: &str, min: i64, max: i64) -> Result<i64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} {s:?} is not a number"));
    }
    let n: i64 = s.parse().map_err(|_| format!("{what} {s:?} is out of range"))?;
    if n < min || n > max {
        return Err(format!("{what} {n} is out of range {min}..={max}"));
    }
    Ok(n)
}

/// `--expires`: epoch seconds (all digits), or ISO 8601 `YYYY-MM-DD[(T| )HH:MM[:SS[.frac]]]`
/// with an optional `Z` / `±HH:MM` / `±HHMM` zone (none = UTC; Python takes local time).
fn parse_expiry(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|e| format!("{text:?}: {e}"));
    }
    let (date, rest) = text.split_at(text.find(['T', 't', ' ']).unwrap_or(text.len()));
    let mut parts = date.split('-');
    let (Some(y), Some(mo), Some(d), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(format!("{text:?} is not YYYY-MM-DD[THH:MM[:SS]][Z|±HH:MM]"));
    };
    if y.len() != 4 || mo.len() != 2 || d.len() != 2 {
        return Err(format!("{text:?}: the date must be YYYY-MM-DD"));
    }
    let (y, mo) = (number(y, "year", 1970, 9999)?, number(mo, "month", 1, 12)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let d = number(d, "day", 1, month_days[(mo - 1) as usize])?;
    let mut secs = days_from_civil(y, mo, d) * 86_400;
    let rest = rest.get(1..).unwrap_or("");
    if !rest.is_empty() {
        let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
        let (time, zone) = rest.split_at(zone_at);
        let time = time
            .split_once('.')
            .map_or(time, |(t, frac)| if frac.bytes().all(|b| b.is_ascii_digit()) { t } else { "invalid" });
        let fields: Vec<&str> = time.split(':').collect();
        let (h, mi, s) = match fields.as_slice() {
            [h, m] => (*h, *m, "00"),
            [h, m, s] => (*h, *m, *s),
            _ => return Err(format!("{text:?}: the time must be HH:MM[:SS[.frac]]")),
        };
        secs += number(h, "hour", 0, 23)? * 3600 + number(mi, "minute", 0, 59)? * 60 + number(s, "second", 0, 59)?;
        match zone {
            "" | "Z" | "z" => {}
            z => {
                let sign = if z.starts_with('-') { -1 } else { 1 };
                let z = &z[1..];
                let (zh, zm) = z.split_once(':').unwrap_or((z.get(..2).unwrap_or(z), z.get(2..).unwrap_or("")));
                let offset = number(zh, "zone hour", 0, 23)? * 3600 + number(zm, "zone minute", 0, 59)? * 60;
                secs -= sign * offset;
            }
        }
    }
    u64::try_from(secs).map_err(|_| format!("{text:?} is before 1970"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_8601_expiries() {
        assert_eq!(parse_expiry("1767225600").ok(), Some(1_767_225_600));
        assert_eq!(parse_expiry("2026-01-01T00:00:00Z").ok(), Some(1_767_225_600));
        assert_eq!(parse_expiry("2026-01-01").ok(), Some(1_767_225_600));
        assert_eq!(parse_expiry("2026-01-01T01:30+01:30").ok(), Some(1_767_225_600));
        assert_eq!(parse_expiry("2025-12-31T19:00:00.25-0500").ok(), Some(1_767_225_600));
        assert_eq!(parse_expiry("2024-02-29 12:00:00").ok(), Some(1_709_208_000));
        assert_eq!(parse_expiry("2020-01-01T00:00:00Z").ok(), Some(1_577_836_800));
        for bad in ["", "2025-02-29", "2026-13-01", "2026-1-1", "tomorrow", "2026-01-01T25:00", "1969-12-31"] {
            assert!(parse_expiry(bad).is_err(), "{bad}");
        }
        assert_eq!(iso_utc(1_767_225_600), "2026-01-01T00:00:00+00:00");
        assert_eq!(iso_utc(1_709_208_000), "2024-02-29T12:00:00+00:00");
        for t in [0, 951_782_400, 4_102_444_799] {
            assert_eq!(parse_expiry(&iso_utc(t)).ok(), Some(t));
        }
    }
}
