//! `comments`, `tags`, `insights` and `webhooks`: Instagram Login's wider read side
//! (reference Part C).

use crate::cli::{CommentAction, WebhooksCommand};
use crate::fail::Failure;
use crate::out;
use crate::settings::Settings;
use futures_util::TryStreamExt;
use igdisplay::graph::{Availability, GraphClient, WebhookField};
use igdisplay::model::{Comment, CommentId, MediaId, Timestamp};

/// The client of the logged-in user.
async fn graph(settings: &Settings) -> Result<GraphClient, Failure> {
    let instagram = settings.instagram(false).await?;
    let user = settings.user(&instagram).await?;
    Ok(instagram.graph(&user))
}

/// `igdisplay comments MEDIA_ID`, or `comments hide|unhide|delete ID`.
pub(crate) async fn comments(
    settings: &Settings,
    action: Option<CommentAction>,
    media: Option<String>,
) -> Result<(), Failure> {
    match (action, media) {
        (Some(CommentAction::Hide { id }), _) => moderate(settings, &id, "hide").await,
        (Some(CommentAction::Unhide { id }), _) => moderate(settings, &id, "unhide").await,
        (Some(CommentAction::Delete { id }), _) => moderate(settings, &id, "delete").await,
        (None, Some(media)) => list(settings, &media).await,
        (None, None) => Err(Failure::usage(
            "name a post: igdisplay comments MEDIA_ID",
            "or hide, unhide or delete a comment: igdisplay comments hide ID",
        )),
    }
}

/// `igdisplay webhooks subscribe|subscriptions|unsubscribe`.
pub(crate) async fn webhooks(settings: &Settings, command: WebhooksCommand) -> Result<(), Failure> {
    match command {
        WebhooksCommand::Subscribe { all, fields } => subscribe(settings, all, &fields).await,
        WebhooksCommand::Serve {
            addr,
            verify_token_file,
            forward,
        } => crate::hooks::serve(settings, addr, &verify_token_file, forward.as_deref()).await,
        WebhooksCommand::Subscriptions => subscription(settings, false).await,
        WebhooksCommand::Unsubscribe => subscription(settings, true).await,
    }
}

/// `igdisplay comments MEDIA_ID`: every comment, each followed by its first replies.
async fn list(settings: &Settings, media: &str) -> Result<(), Failure> {
    let comments: Vec<Comment> = graph(settings)
        .await?
        .comments(&MediaId::new(media))
        .all_fields()
        .with_replies()
        .into_stream()
        .try_collect()
        .await?;
    if settings.json {
        out::json(&comments);
        return Ok(());
    }
    let row = |c: &Comment, indent: &str| {
        vec![
            format!("{indent}{}", c.id),
            c.username.as_deref().map(|u| format!("@{u}")).unwrap_or_default(),
            c.timestamp.map_or_else(String::new, Timestamp::to_rfc3339),
            if c.hidden == Some(true) { "hidden" } else { "" }.to_owned(),
            out::short(c.text.as_deref().unwrap_or(""), 60),
        ]
    };
    let rows: Vec<Vec<String>> = comments
        .iter()
        .flat_map(|c| std::iter::once(row(c, "")).chain(c.replies().iter().map(|r| row(r, "  ↳ "))))
        .collect();
    out::table(&["ID", "BY", "WRITTEN", "", "TEXT"], &rows);
    Ok(())
}

/// `igdisplay comments hide|unhide|delete ID`.
async fn moderate(settings: &Settings, id: &str, action: &str) -> Result<(), Failure> {
    let graph = graph(settings).await?;
    let comment = CommentId::new(id);
    let done = match action {
        "hide" => graph.hide_comment(&comment, true).send().await?,
        "unhide" => graph.hide_comment(&comment, false).send().await?,
        _ => graph.delete_comment(&comment).send().await?,
    };
    if settings.json {
        out::json(&serde_json::json!({"id": id, "action": action, "success": done.success}));
    } else if done.success {
        eprintln!("{action}: done");
    } else {
        return Err(Failure::runtime(format!(
            "Instagram did not confirm the {action}"
        )));
    }
    Ok(())
}

/// `igdisplay tags`.
pub(crate) async fn tags(settings: &Settings) -> Result<(), Failure> {
    let tagged: Vec<_> = graph(settings)
        .await?
        .tags()
        .all_fields()
        .into_stream()
        .try_collect()
        .await?;
    if settings.json {
        out::json(&tagged);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = tagged
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                m.username.as_deref().map(|u| format!("@{u}")).unwrap_or_default(),
                m.timestamp.map_or_else(String::new, Timestamp::to_rfc3339),
                m.permalink.clone().unwrap_or_default(),
            ]
        })
        .collect();
    out::table(&["ID", "BY", "PUBLISHED", "LINK"], &rows);
    Ok(())
}

/// `igdisplay insights MEDIA_ID|me`.
pub(crate) async fn insights(
    settings: &Settings,
    target: &str,
    metrics: &[String],
    period: &str,
    breakdown: Option<&str>,
) -> Result<(), Failure> {
    let graph = graph(settings).await?;
    let asked: Vec<&str> = if metrics.is_empty() {
        vec!["views", "reach"]
    } else {
        metrics.iter().map(String::as_str).collect()
    };
    let report = if target == "me" {
        graph.user_insights(&asked, period, breakdown).await?
    } else {
        graph.media_insights(&MediaId::new(target), &asked).await?
    };
    for replaced in &report.replaced {
        eprintln!(
            "note: {} was removed by Instagram; asked as {}",
            replaced.from, replaced.to
        );
    }
    for dropped in &report.dropped {
        eprintln!("note: {} left out: {}", dropped.name, dropped.reason);
    }
    if settings.json {
        out::json(&serde_json::json!({
            "availability": format!("{:?}", report.availability),
            "insights": report.insights,
        }));
        return Ok(());
    }
    match report.availability {
        Availability::NotEnoughViewers => {
            println!("Instagram shows no insights for it yet: not enough viewers")
        }
        Availability::NoData => println!("no data (insights can lag up to 48 hours)"),
        Availability::NothingToAsk => println!("no metric left to ask for"),
        _ => {
            let rows: Vec<Vec<String>> = report
                .insights
                .iter()
                .map(|i| {
                    vec![
                        i.name.clone(),
                        i.period.clone().unwrap_or_default(),
                        i.number().map_or_else(|| "-".to_owned(), |n| n.to_string()),
                    ]
                })
                .collect();
            out::table(&["METRIC", "PERIOD", "VALUE"], &rows);
        }
    }
    Ok(())
}

/// The webhook fields named, or all of them.
fn fields(names: &[String]) -> Result<Vec<WebhookField>, Failure> {
    if names.is_empty() {
        return Ok(WebhookField::ALL.to_vec());
    }
    names
        .iter()
        .map(|name| {
            WebhookField::ALL
                .into_iter()
                .find(|f| f.as_str() == name)
                .ok_or_else(|| {
                    let all: Vec<&str> = WebhookField::ALL.iter().map(|f| f.as_str()).collect();
                    Failure::usage(
                        format!("`{name}` is not a webhook field"),
                        format!("use one of {}", all.join(", ")),
                    )
                })
        })
        .collect()
}

/// `igdisplay webhooks subscribe [--all]`: the logged-in account, or every usable account of
/// the --store, each reported (one failing does not stop the others).
async fn subscribe(settings: &Settings, all: bool, names: &[String]) -> Result<(), Failure> {
    let fields = fields(names)?;
    let instagram = settings.instagram(false).await?;
    let users = if all {
        if !settings.has_store() {
            return Err(Failure::usage(
                "--all subscribes every account of a database of accounts",
                "pass --store sqlite:PATH or --store postgres://USER@HOST/DB",
            ));
        }
        instagram.tokens().store().users().await?
    } else {
        vec![settings.user(&instagram).await?]
    };
    let mut failed = 0usize;
    let mut report = Vec::new();
    for user in users {
        let outcome = instagram.graph(&user).subscribe(&fields).send().await;
        let (ok, detail) = match outcome {
            Ok(done) => (done.success, String::new()),
            Err(error) => (false, error.to_string()),
        };
        failed += usize::from(!ok);
        report.push(serde_json::json!({"user_id": user.as_str(), "subscribed": ok, "error": detail}));
        if !settings.json {
            let state = if ok {
                "subscribed".to_owned()
            } else {
                format!("failed: {detail}")
            };
            println!("{:<20} {state}", user.as_str());
        }
    }
    if settings.json {
        out::json(&report);
    }
    if failed > 0 {
        return Err(Failure::runtime(format!(
            "{failed} account(s) could not be subscribed"
        )));
    }
    Ok(())
}

/// `igdisplay webhooks subscriptions` and `unsubscribe`.
async fn subscription(settings: &Settings, end: bool) -> Result<(), Failure> {
    let graph = graph(settings).await?;
    if end {
        graph.unsubscribe().send().await?;
        eprintln!("unsubscribed");
        return Ok(());
    }
    let listed = graph.subscriptions().send().await?;
    if settings.json {
        out::json(&listed.data);
    } else if let Some(subscription) = listed.data.first() {
        println!("{}", subscription.subscribed_fields.join(","));
    } else {
        println!("not subscribed");
    }
    Ok(())
}
