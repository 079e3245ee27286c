//! `igdisplay feeds serve` and `igdisplay feeds admin-token`: the feed service
//! (igdisplay-feeds) as one process, and its admin tokens.

use crate::cli::FeedsServeArgs;
use crate::fail::{Failure, chain};
use crate::mirror::Target;
use crate::settings::Settings;
use igdisplay_feeds::{FeedService, FeedsConfig};
use igdisplay_mirror::{Mirror, ServeLimits};
use tokio::sync::watch;

/// `igdisplay feeds admin-token`.
pub(crate) async fn admin_token(settings: &Settings, label: &str) -> Result<(), Failure> {
    let store = settings.sql_store().await?;
    let token = store
        .add_admin_token(label)
        .await
        .map_err(|e| Failure::runtime(chain(&e)))?;
    if settings.json {
        crate::out::json(&serde_json::json!({ "token": token, "label": label }));
    } else {
        println!("{token}");
        eprintln!(
            "Send it as `Authorization: Bearer …` to /v1/admin/. It is shown once: the store keeps its hash."
        );
    }
    Ok(())
}

/// `igdisplay feeds serve`: the HTTP API, the scheduler and the keeper until Ctrl-C; a sync
/// under way is finished before the process ends.
pub(crate) async fn serve(settings: &Settings, args: FeedsServeArgs) -> Result<(), Failure> {
    let store = settings.sql_store().await?;
    let mut config = config(&args);
    let target = crate::mirror::target(args.target)?;
    if let Target::Folder(dir) = &target {
        std::fs::create_dir_all(dir).map_err(|e| {
            Failure::runtime(format!("cannot make the mirror's folder {}: {e}", dir.display()))
        })?;
        if config.media_base.is_none() {
            config.media_folder = Some(dir.clone());
        }
    }
    if settings.mock().is_some() && !settings.register_redirect_with_mock(&config.callback_url()).await {
        eprintln!(
            "warning: the mock did not take {} as a redirect URI",
            config.callback_url()
        );
    }
    let instagram = settings
        .instagram_for_feeds(store.clone(), config.callback_url())
        .await?;
    let mirror =
        Mirror::new(target.blobs().await?, settings.downloader(None)?).with_clock(instagram.clock().clone());
    let keeper = keeper(
        &instagram,
        &store,
        &config,
        (args.quota.as_deref(), args.webhook.as_deref()),
    )?;
    let metrics = crate::metrics::recorder()?;
    let service = FeedService::new(store, mirror, instagram, config)
        .map_err(|e| Failure::runtime(chain(&e)).hint("check that the mirror's folder exists"))?
        .with_budget(keeper.budget().clone())
        .with_metrics(std::sync::Arc::new(move || metrics.render()));
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| Failure::runtime(format!("cannot listen on {}: {e}", args.addr)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::runtime(e.to_string()))?;
    // The first line says where it listens (a script reads it).
    println!("feeds: listening on http://{addr}");
    eprintln!(
        "feeds {}: public at {}; register {} as the app's redirect URI",
        service.config().owner,
        service.config().public_url,
        service.config().callback_url()
    );
    let (stop, stopped) = watch::channel(false);
    let http = {
        let service = service.clone();
        igdisplay_mirror::serve(
            listener,
            ServeLimits::default(),
            hyper::service::service_fn(move |request| {
                let service = service.clone();
                async move { Ok::<_, std::convert::Infallible>(service.handle(request).await) }
            }),
            until(stopped.clone()),
        )
    };
    let scheduler = service.run_scheduler(until(stopped.clone()));
    let keeping = keeper.run(until(stopped));
    let signal = async {
        crate::fleet::shutdown_signal().await;
        eprintln!(
            "feeds {}: stopping (finishing the sync under way)",
            service.config().owner
        );
        let _ = stop.send(true);
    };
    let ((), (), (), kept) = tokio::join!(signal, http, scheduler, keeping);
    kept.map_err(|e| Failure::runtime(chain(&e)))?;
    eprintln!("feeds {}: stopped", service.config().owner);
    Ok(())
}

/// The instance's configuration from its flags.
fn config(args: &FeedsServeArgs) -> FeedsConfig {
    let mut config = FeedsConfig::new(args.public_url.clone());
    config.media_base = args.media_base.clone();
    if let Some(owner) = &args.owner {
        config.owner = owner.clone();
    }
    config.idle = std::time::Duration::from_secs(args.idle);
    config.sync_lease = std::time::Duration::from_secs(args.sync_lease);
    config.sync_concurrency = usize::from(args.sync_concurrency);
    config
}

/// The keeper of the instance: the app's quota (which the syncs book in too) and the
/// webhook its events go to.
fn keeper(
    instagram: &igdisplay::Instagram,
    store: &igdisplay::store::SqlStore,
    config: &FeedsConfig,
    (quota, webhook): (Option<&str>, Option<&str>),
) -> Result<igdisplay::store::Keeper, Failure> {
    let mut keeper_settings = igdisplay::store::KeeperSettings::default();
    if let Some(quota) = quota {
        keeper_settings = keeper_settings.quota(crate::fleet::parse_quota(quota)?);
    }
    let mut keeper = instagram
        .fleet(store.clone())
        .settings(keeper_settings)
        .owner(config.owner.clone());
    if let Some(url) = webhook {
        keeper = keeper.webhook(crate::fleet::webhook(url, instagram.backend().clone())?);
    }
    Ok(keeper.build())
}

/// Completes once `stopped` says so (or its sender is gone).
async fn until(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}
