//! `mosaic profile set|show`: this identity's profile, and anyone's.

use std::io::Write;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use mosaic_core::{Profile, PublicKey};
use serde::Serialize;

use crate::Status;
use crate::connect::{NetArgs, Session, explain, print_outcomes};
use crate::feed::{UserArg, optional_config, parse_user};
use crate::identity::{self, Home, PublishedJson};
use crate::output::{self, OutputArgs};

/// The `profile` commands.
#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Publish this identity's profile (fields not given keep their
    /// published values).
    #[command(after_help = SET_AFTER_HELP)]
    Set(SetArgs),
    /// Show a user's profile (default: this identity's).
    #[command(after_help = SHOW_AFTER_HELP)]
    Show(ShowArgs),
}

const SET_AFTER_HELP: &str = "\
The profile is signed with the master key (its password is asked, or read from
MOSAIC_PASSWORD) and replaces the one on the outboxes. An empty value (\"\")
removes a field.

With --json: {\"id\", \"servers\": [{\"server\", \"usage\", \"stored\", \"result\"}],
\"profile\": PROFILE} (PROFILE as in `mosaic profile show --json`).

Example:
  mosaic profile set --name alice --display-name \"Alice A.\" --about \"Hello\"";

const SHOW_AFTER_HELP: &str = "\
With --json: {\"public_key\", \"name\", \"display_name\", \"about\", \"avatar\",
\"website\", \"banner\", \"org\", \"bot\", \"lud16\"} (absent fields are null).";

/// Arguments of `profile set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// The name for @mentions (printable ASCII); required the first time.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// A name for display, in any script.
    #[arg(long, value_name = "TEXT")]
    display_name: Option<String>,
    /// A few words about yourself.
    #[arg(long, value_name = "TEXT")]
    about: Option<String>,
    /// URL of a square picture.
    #[arg(long, value_name = "URL")]
    avatar: Option<String>,
    /// URL of your website.
    #[arg(long, value_name = "URL")]
    website: Option<String>,
    /// URL of a background picture.
    #[arg(long, value_name = "URL")]
    banner: Option<String>,
    #[command(flatten)]
    net: NetArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// Arguments of `profile show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Whose profile: mopub0..., or `me` (the default).
    #[arg(value_name = "USER", value_parser = parse_user)]
    user: Option<UserArg>,
    #[command(flatten)]
    net: NetArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// A profile in JSON output.
#[derive(Debug, Serialize)]
pub struct ProfileJson {
    public_key: String,
    name: String,
    display_name: Option<String>,
    about: Option<String>,
    avatar: Option<String>,
    website: Option<String>,
    banner: Option<String>,
    org: Option<bool>,
    bot: Option<bool>,
    lud16: Option<String>,
}

impl ProfileJson {
    fn new(key: &PublicKey, p: &Profile) -> ProfileJson {
        ProfileJson {
            public_key: key.to_printable(),
            name: p.name().to_owned(),
            display_name: p.display_name.clone(),
            about: p.about.clone(),
            avatar: p.avatar.clone(),
            website: p.website.clone(),
            banner: p.banner.clone(),
            org: p.org,
            bot: p.bot,
            lud16: p.lud16.clone(),
        }
    }
}

/// Runs a `profile` command.
pub fn run(command: ProfileCommand) -> anyhow::Result<Status> {
    match command {
        ProfileCommand::Set(args) => set(args),
        ProfileCommand::Show(args) => show(args),
    }
}

/// `Some("")` clears a field.
fn apply(field: &mut Option<String>, given: &Option<String>) {
    if let Some(value) = given {
        *field = (!value.is_empty()).then(|| value.clone());
    }
}

fn set(args: SetArgs) -> anyhow::Result<Status> {
    let home = Home::locate()?;
    let config = home.load_config()?;
    if let Some(name) = &args.name {
        Profile::new(name.clone()).context("not a valid profile name")?;
    }
    let master = home.master_key(&config)?;
    let me = config.public_key;
    let session = Session::open(&home, Some(&config), &args.net, Some(master.clone()))?;
    let (record, profile, report) = crate::dht::runtime()?.block_on(async {
        let current = match session.client.profile(&me).await {
            Ok(current) => current,
            Err(error) if args.name.is_some() => {
                output::warn(format_args!(
                    "cannot read the current profile ({}); fields not given are left empty",
                    explain(&error)
                ));
                None
            }
            Err(error) => bail!(
                "cannot read the current profile to change it: {}",
                explain(&error)
            ),
        };
        let mut profile = match (current, &args.name) {
            (Some(mut p), Some(name)) => {
                p.set_name(name.clone())?;
                p
            }
            (Some(p), None) => p,
            (None, Some(name)) => Profile::new(name.clone())?,
            (None, None) => bail!("no profile is published yet: give --name"),
        };
        apply(&mut profile.display_name, &args.display_name);
        apply(&mut profile.about, &args.about);
        apply(&mut profile.avatar, &args.avatar);
        apply(&mut profile.website, &args.website);
        apply(&mut profile.banner, &args.banner);
        let record = profile.build_record(&master, identity::now()?, Profile::default_nonce())?;
        let report = session
            .client
            .publish(&record)
            .await
            .map_err(|e| anyhow::anyhow!("{}", explain(&e)))
            .context("cannot publish the profile")?;
        anyhow::Ok((record, profile, report))
    })?;
    let servers: Vec<_> = report
        .per_server
        .iter()
        .map(crate::connect::outcome_json)
        .collect();
    if report.stored_on() == 0 {
        bail!(
            "no server stored the profile: {}",
            crate::connect::outcome_summary(&servers)
        );
    }
    let published = PublishedJson {
        id: record.id().to_printable(),
        servers,
    };
    let mut out = output::stdout();
    if args.output.json {
        #[derive(Serialize)]
        struct SetJson {
            #[serde(flatten)]
            published: PublishedJson,
            profile: ProfileJson,
        }
        let json = SetJson {
            published,
            profile: ProfileJson::new(&me, &profile),
        };
        output::json(&mut out, &json)?;
        return Ok(Status::Success);
    }
    writeln!(out, "profile published: {}", published.id)?;
    print_outcomes(&mut out, &published.servers)?;
    print_profile(&mut out, &ProfileJson::new(&me, &profile))?;
    out.flush()?;
    Ok(Status::Success)
}

fn show(args: ShowArgs) -> anyhow::Result<Status> {
    let home = Home::locate()?;
    let config = optional_config(&home)?;
    let user = args.user.unwrap_or(UserArg::Me).resolve(config.as_ref())?;
    let session = Session::open(&home, config.as_ref(), &args.net, None)?;
    let profile = crate::dht::runtime()?.block_on(async {
        // Through a fetch, so that a moved user's bootstrap is looked up
        // again, and errors say what to check.
        let filter = mosaic_core::FilterBuilder::new()
            .authors([user])
            .kinds([mosaic_core::Kind::PROFILE])
            .build()?;
        let report = session.fetch(&user, &filter, 16).await?;
        anyhow::Ok(
            report
                .records
                .iter()
                .find_map(|r| Profile::from_record(r).ok()),
        )
    })?;
    let Some(profile) = profile else {
        bail!("{user} has published no profile");
    };
    let json = ProfileJson::new(&user, &profile);
    let mut out = output::stdout();
    if args.output.json {
        output::json(&mut out, &json)?;
        return Ok(Status::Success);
    }
    print_profile(&mut out, &json)?;
    out.flush()?;
    Ok(Status::Success)
}

fn print_profile(out: &mut impl Write, p: &ProfileJson) -> anyhow::Result<()> {
    writeln!(out, "key:          {}", p.public_key)?;
    writeln!(out, "name:         {}", p.name)?;
    for (label, value) in [
        ("display name", &p.display_name),
        ("about", &p.about),
        ("avatar", &p.avatar),
        ("website", &p.website),
        ("banner", &p.banner),
        ("lud16", &p.lud16),
    ] {
        if let Some(value) = value {
            writeln!(out, "{:<13} {value}", format!("{label}:"))?;
        }
    }
    for (label, value) in [("organisation", p.org), ("bot", p.bot)] {
        if let Some(value) = value {
            writeln!(
                out,
                "{:<13} {}",
                format!("{label}:"),
                if value { "yes" } else { "no" }
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_clear_fields() {
        let mut field = Some("old".to_owned());
        apply(&mut field, &None);
        assert_eq!(field.as_deref(), Some("old"));
        apply(&mut field, &Some("new".into()));
        assert_eq!(field.as_deref(), Some("new"));
        apply(&mut field, &Some(String::new()));
        assert_eq!(field, None);
    }

    #[test]
    fn profiles_print() {
        let key = mosaic_core::SecretKey::from_bytes(&[1; 32]).public();
        let mut p = Profile::new("alice").unwrap();
        p.about = Some("hi".into());
        p.bot = Some(false);
        let mut out = Vec::new();
        print_profile(&mut out, &ProfileJson::new(&key, &p)).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("name:         alice\n"), "{text}");
        assert!(text.contains("about:        hi\n"), "{text}");
        assert!(text.contains("bot:          no\n"), "{text}");
        assert!(!text.contains("website"), "{text}");
    }
}
