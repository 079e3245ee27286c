//! `igdisplay sync` and `igdisplay serve`: a mirror of every stored account in a folder, and
//! that folder over HTTP.

use crate::cli::MirrorTarget;
use crate::fail::{Failure, chain};
use crate::settings::Settings;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use igdisplay_mirror::{BlobStore, FileBody, FileServer, FsBlobStore, Mirror, ServeLimits, SyncError};
use std::path::Path;
use std::sync::Arc;

/// Where `igdisplay sync` writes.
pub(crate) enum Target {
    Folder(std::path::PathBuf),
    Bucket(igdisplay_mirror::S3Config),
}

impl Target {
    fn describe(&self) -> String {
        match self {
            Target::Folder(dir) => dir.display().to_string(),
            Target::Bucket(config) => format!("bucket {}", config.bucket),
        }
    }

    /// The store; a folder's leftovers of a crashed write removed first.
    pub(crate) async fn blobs(&self) -> Result<Arc<dyn BlobStore>, Failure> {
        Ok(match self {
            Target::Folder(dir) => {
                let blobs = FsBlobStore::new(dir);
                blobs
                    .remove_leftovers()
                    .await
                    .map_err(|e| Failure::runtime(chain(&e)).hint("check that the folder is readable"))?;
                Arc::new(blobs)
            }
            Target::Bucket(config) => {
                Arc::new(igdisplay_mirror::ObjectBlobStore::s3(config).map_err(|e| {
                    Failure::usage(chain(&e), "check --bucket, --s3-endpoint and the AWS_* variables")
                })?)
            }
        })
    }
}

/// The target of `--out DIR` or `--bucket NAME [--s3-endpoint URL]`.
pub(crate) fn target(args: MirrorTarget) -> Result<Target, Failure> {
    let (out, bucket, endpoint) = (args.place.out, args.place.bucket, args.s3_endpoint);
    if let Some(dir) = out {
        return Ok(Target::Folder(dir));
    }
    let bucket = bucket.ok_or_else(|| Failure::usage("sync needs --out DIR or --bucket NAME", "pass one"))?;
    let hint = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for the bucket";
    let key = std::env::var("AWS_ACCESS_KEY_ID")
        .map_err(|_| Failure::usage("no access key for the bucket", hint))?;
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY")
        .map_err(|_| Failure::usage("no secret key for the bucket", hint))?;
    let plain = endpoint.as_deref().is_some_and(|e| e.starts_with("http://"));
    let mut config = igdisplay_mirror::S3Config::new(bucket, endpoint, key, secret).allow_http(plain);
    if let Ok(region) = std::env::var("AWS_REGION") {
        config.region = region;
    }
    Ok(Target::Bucket(config))
}

/// `igdisplay sync`.
pub(crate) async fn sync(settings: &Settings, target: Target) -> Result<(), Failure> {
    let instagram = settings.instagram(false).await?;
    let users = instagram.tokens().store().users().await?;
    // With a database of accounts, an account whose token Instagram refuses is marked there:
    // the keeper stops refreshing it and `igdisplay accounts` shows it, until a new login.
    let accounts = if settings.has_store() {
        Some(settings.sql_store().await?)
    } else {
        None
    };
    let mirror =
        Mirror::new(target.blobs().await?, settings.downloader(None)?).with_clock(instagram.clock().clone());
    let mut reports = Vec::new();
    let mut failed = 0usize;
    if let Some(accounts) = &accounts {
        purge_gone(settings, &mirror, accounts, &mut reports).await?;
    }
    if users.is_empty() && reports.is_empty() {
        return Err(Failure::runtime("no account is stored")
            .hint("log in first (`igdisplay login`), or point --store at the accounts"));
    }
    for user in &users {
        let (report, ok) = sync_one(settings, &mirror, accounts.as_ref(), &instagram, user).await?;
        failed += usize::from(!ok);
        reports.push(report);
    }
    if settings.json {
        crate::out::json(&reports);
    } else {
        println!(
            "Mirrored {} of {} accounts into {}",
            users.len() - failed,
            users.len(),
            target.describe()
        );
    }
    if failed > 0 {
        return Err(Failure::runtime(format!("{failed} accounts were not synced")));
    }
    Ok(())
}

/// One account's sync, under the store's lease when there is one (another instance syncing
/// it means a skip): its line of the report, and whether it synced. A listing Instagram
/// refuses keeps the last good feed, and marks the account revoked in the store when the
/// token is the reason.
async fn sync_one(
    settings: &Settings,
    mirror: &Mirror,
    accounts: Option<&igdisplay::store::SqlStore>,
    instagram: &igdisplay::Instagram,
    user: &igdisplay::model::UserId,
) -> Result<(serde_json::Value, bool), Failure> {
    let graph = instagram.graph(user);
    let sync = mirror.sync(user, &graph);
    let synced = match accounts {
        // Across instances on one store: one sync of an account at a time.
        Some(accounts) => {
            let task = Mirror::sync_task(user);
            let held = accounts
                .exclusive(&task, igdisplay_mirror::SYNC_LEASE, sync)
                .await
                .map_err(|e| Failure::runtime(chain(&e)))?;
            let Some(synced) = held else {
                if !settings.json {
                    eprintln!("{user}: another instance is syncing it; skipped");
                }
                return Ok((
                    serde_json::json!({"user_id": user, "skipped": "syncing elsewhere"}),
                    true,
                ));
            };
            synced
        }
        None => sync.await,
    };
    match synced {
        Ok(report) => {
            if !settings.json {
                eprintln!(
                    "{user}: {} posts, {} requests, {} files downloaded, {} kept, {} removed, {} unavailable",
                    report.items,
                    report.graph_calls,
                    report.downloaded,
                    report.reused,
                    report.removed,
                    report.unavailable
                );
            }
            Ok((serde_json::json!({"user_id": user, "report": report}), true))
        }
        Err(SyncError::Listing { kept, source }) => {
            eprintln!(
                "{user}: not synced ({}); the last good feed ({kept} posts) is kept",
                chain(&source)
            );
            let mut event = None;
            if let (true, Some(accounts)) = (source.requires_login(), accounts) {
                event = accounts
                    .mark_revoked(user, &chain(&source))
                    .await
                    .map_err(|e| Failure::runtime(chain(&e)))?;
                if event.is_some() {
                    eprintln!("{user}: marked revoked in the store: it needs a new login");
                }
            }
            let line = serde_json::json!({
                "user_id": user, "error": chain(&source), "kept": kept, "event": event,
            });
            Ok((line, false))
        }
        Err(error) => Err(Failure::runtime(chain(&error)).hint("check that the folder is writable")),
    }
}

/// Purges the mirror of every account the store marks deauthorized or remembers as deleted
/// (the mirror keeps nothing of an account that removed the app or asked for deletion).
async fn purge_gone(
    settings: &Settings,
    mirror: &Mirror,
    accounts: &igdisplay::store::SqlStore,
    reports: &mut Vec<serde_json::Value>,
) -> Result<(), Failure> {
    let failure = |e: igdisplay::store::Error| Failure::runtime(chain(&e));
    let mut gone = accounts.deleted_users().await.map_err(failure)?;
    let mut after = None;
    loop {
        let page = accounts.list(after.as_ref(), 1000).await.map_err(failure)?;
        let Some(last) = page.last() else {
            break;
        };
        after = Some(last.user_id.clone());
        gone.extend(
            page.into_iter()
                .filter(|a| a.state == igdisplay::store::AccountState::Deauthorized)
                .map(|a| a.user_id),
        );
    }
    for user in gone {
        let purged = mirror
            .purge(&user)
            .await
            .map_err(|e| Failure::runtime(chain(&e)).hint("check that the folder is writable"))?;
        if purged.had_feed {
            if !settings.json {
                eprintln!(
                    "{user}: removed or deleted: its mirror is purged ({} files)",
                    purged.files
                );
            }
            reports.push(serde_json::json!({"user_id": user, "purged": purged}));
        }
    }
    Ok(())
}

/// `igdisplay mirror purge USER_ID`.
pub(crate) async fn purge(settings: &Settings, user: &str, target: Target) -> Result<(), Failure> {
    let user = igdisplay::model::UserId::new(user);
    let mirror = Mirror::new(target.blobs().await?, settings.downloader(None)?);
    let purged = mirror
        .purge(&user)
        .await
        .map_err(|e| Failure::runtime(chain(&e)).hint("check that the folder is writable"))?;
    if settings.json {
        crate::out::json(&serde_json::json!({"user_id": user, "purged": purged}));
    } else if purged.had_feed {
        println!(
            "Purged {user} from {}: {} files, {} feed files",
            target.describe(),
            purged.files,
            purged.pages
        );
    } else {
        println!("{user} has no mirror in {}", target.describe());
    }
    Ok(())
}

/// `igdisplay serve --dir DIR`: `GET`/`HEAD /feeds/{user}.json` (an index), its pages
/// `/feeds/{user}/{sync}/{n}.json` and `/media/{id}/{file}`, read only, from the folder,
/// through the mirror's one file server ([`FileServer`]: streamed, ranges, validators,
/// timeouts, a connection limit); anything else is 404.
pub(crate) async fn serve(dir: &Path, addr: std::net::SocketAddr) -> Result<(), Failure> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::runtime(format!("cannot create {}: {e}", dir.display())))?;
    let files =
        FileServer::new(dir).map_err(|e| Failure::runtime(format!("cannot read {}: {e}", dir.display())))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Failure::usage(format!("cannot listen on {addr}: {e}"), "pick another --addr"))?;
    let local = listener.local_addr().map_err(Failure::from)?;
    println!("serving {} on http://{local}", dir.display());
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let files = files.clone();
        async move { Ok::<_, std::convert::Infallible>(answer(&files, &request).await) }
    });
    igdisplay_mirror::serve(listener, ServeLimits::default(), service, std::future::pending()).await;
    Ok(())
}

/// The mirror's public part: pages, indexes and media; never another file of the folder.
async fn answer(files: &FileServer, request: &Request<hyper::body::Incoming>) -> Response<FileBody> {
    let path = request.uri().path().trim_start_matches('/');
    let public = path.starts_with("media/") || (path.starts_with("feeds/") && path.ends_with(".json"));
    if !public {
        let mut refused = Response::new(FileBody::empty());
        *refused.status_mut() = StatusCode::NOT_FOUND;
        return refused;
    }
    let mut response = files.respond(request.method(), path, request.headers()).await;
    if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED {
        let cache = if Mirror::is_immutable(path) {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    }
    response
}
