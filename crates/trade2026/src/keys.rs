//! `trade2026 keys create | list | revoke`: the API keys of a data dir. Works while the platform
//! runs: the services reread the key file within about a second of a change.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use auth::{Accounts, AllMarker, ApiKeys, Role};
use clap::{Args, Subcommand, ValueEnum};
use model::AccountId;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it. The key is shown this once: only its SHA-256 is stored.
    Create {
        #[arg(long, value_enum)]
        role: RoleArg,
        /// The accounts the key covers, comma-separated, or `*` for every account (the default
        /// for compliance and admin keys; a trader key names its accounts).
        #[arg(long)]
        accounts: Option<String>,
        #[command(flatten)]
        at: KeyFileArgs,
    },
    /// List the keys: id, role, accounts, creation time (never a key or its hash).
    List {
        #[command(flatten)]
        at: KeyFileArgs,
    },
    /// Revoke a key by its id (from `keys list`); a running platform refuses it within about
    /// a second.
    Revoke {
        /// The key id (`k_...`), not the key itself.
        id: String,
        #[command(flatten)]
        at: KeyFileArgs,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Trader,
    Compliance,
    Admin,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Trader => Role::Trader,
            RoleArg::Compliance => Role::Compliance,
            RoleArg::Admin => Role::Admin,
        }
    }
}

#[derive(Args)]
pub struct KeyFileArgs {
    /// The platform's data dir, which holds api_keys.json (default ./data, or
    /// platform.data_dir from --config).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The key file itself (default: platform.keys_file, else <data dir>/api_keys.json); the
    /// services of a cluster share one.
    #[arg(long)]
    keys_file: Option<PathBuf>,
    #[command(flatten)]
    common: crate::CommonArgs,
}

impl KeyFileArgs {
    fn open(&self, create_dir: bool) -> Result<ApiKeys> {
        let mut cfg = crate::load_config(&self.common)?.config;
        if let Some(d) = &self.data_dir {
            cfg.platform.data_dir.clone_from(d);
        }
        if let Some(f) = &self.keys_file {
            cfg.platform.keys_file = Some(f.clone());
        }
        let path = cfg.keys_path();
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), std::path::Path::to_path_buf);
        if create_dir {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("creating the data dir {}", dir.display()))?;
        } else if !dir.is_dir() {
            bail!(
                "no data dir {} for the key file (is --data-dir / --keys-file right?)",
                dir.display()
            );
        }
        if let Some(warning) = auth::permissions_warning(&path) {
            eprintln!("warning: {warning}");
        }
        Ok(ApiKeys::open(&path)?)
    }
}

/// `--accounts`: `*`, or names separated by commas, each a valid account id.
fn parse_accounts(role: Role, arg: Option<&str>) -> Result<Accounts> {
    let Some(arg) = arg else {
        if role == Role::Trader {
            bail!(
                "a trader key names its accounts: --accounts A,B (or --accounts '*' for every account)"
            );
        }
        return Ok(Accounts::All(AllMarker::All));
    };
    if arg.trim() == "*" {
        return Ok(Accounts::All(AllMarker::All));
    }
    let accounts = arg
        .split(',')
        .map(|a| {
            let a = a.trim();
            if a.is_empty() {
                bail!("--accounts {arg:?}: an empty account name");
            }
            AccountId::new(a).with_context(|| format!("--accounts: {a:?}"))
        })
        .collect::<Result<_>>()?;
    Ok(Accounts::Some(accounts))
}

fn created(at: Option<model::Timestamp>) -> String {
    at.map_or_else(|| "-".to_owned(), |t| t.to_string())
}

pub fn run(cmd: KeysCommand) -> Result<()> {
    match cmd {
        KeysCommand::Create { role, accounts, at } => {
            let role = Role::from(role);
            let accounts = parse_accounts(role, accounts.as_deref())?;
            let keys = at.open(true)?;
            let (key, info) = keys.create_key(role, accounts)?;
            println!("id        {}", info.id);
            println!("role      {}", info.role);
            println!("accounts  {}", info.accounts);
            println!("created   {}", created(info.created_at));
            println!("key       {key}");
            eprintln!(
                "The key is shown this once (only its hash is stored); send it as \
                 `Authorization: Bearer <key>`. A running platform accepts it within a second."
            );
        }
        KeysCommand::List { at } => {
            let keys = at.open(false)?.list()?;
            println!("{:<14} {:<11} {:<36} CREATED", "ID", "ROLE", "ACCOUNTS");
            for k in keys {
                println!(
                    "{:<14} {:<11} {:<36} {}",
                    k.id,
                    k.role.to_string(),
                    k.accounts.to_string(),
                    created(k.created_at)
                );
            }
        }
        KeysCommand::Revoke { id, at } => {
            let info = at.open(false)?.revoke(&id)?;
            println!(
                "revoked {} ({}, accounts {}); a running platform refuses it within a second",
                info.id, info.role, info.accounts
            );
        }
    }
    Ok(())
}
