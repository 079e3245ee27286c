//! Comments through the client (reference C.2), over both backends: read with their replies,
//! hidden and shown again, replied to, deleted, turned off; the replies Instagram would
//! refuse refused before anything is posted.

use crate::{Case, cases};
use futures_util::TryStreamExt;
use igdisplay::auth::scopes::Scope;
use igdisplay::graph::{CommentField, Error, MediaField, ReplyRefused};
use igdisplay::model::Platform;

/// A login of `username` that granted the comments scope; the client for it.
async fn commenting(case: Case, mock: &igdisplay::mock::MockServer) -> igdisplay::graph::GraphClient {
    let instagram = case.client(mock);
    let token = crate::login_granting(
        mock,
        &instagram,
        "jayposiris",
        &[Scope::InstagramBusinessManageComments],
    )
    .await;
    instagram.graph(&token.user_id)
}

#[tokio::test]
async fn comments_are_read_moderated_and_replied_to_through_the_client() {
    for case in cases()
        .into_iter()
        .filter(|c| c.platform == Platform::InstagramLogin)
    {
        let mock = case.mock();
        let graph = commenting(case, &mock).await;
        let media: Vec<_> = graph
            .my_media()
            .fields(&[MediaField::CommentsCount])
            .into_stream()
            .try_collect()
            .await
            .unwrap();
        let post = media.iter().find(|m| m.comments_count >= Some(8)).unwrap();
        let comments: Vec<_> = graph
            .comments(&post.id)
            .all_fields()
            .with_replies()
            .limit(5)
            .into_stream()
            .try_collect()
            .await
            .unwrap();
        let replies: usize = comments.iter().map(|c| c.replies().len()).sum();
        assert_eq!(
            (comments.len() + replies) as u64,
            post.comments_count.unwrap(),
            "{case:?}: every comment over every page, replies included"
        );
        let top = comments.iter().find(|c| c.hidden == Some(false)).unwrap();

        assert!(graph.hide_comment(&top.id, true).send().await.unwrap().success);
        let before = mock.requests_total();
        let refused = graph.reply_to_comment(&top.id, "hi").await.unwrap_err();
        assert!(
            matches!(refused, Error::CannotReply(ReplyRefused::Hidden)),
            "{refused:?}"
        );
        assert_eq!(
            mock.requests_total(),
            before + 1,
            "{case:?}: only the check was sent"
        );
        graph.hide_comment(&top.id, false).send().await.unwrap();

        let reply = graph.reply_to_comment(&top.id, "Thank you!").await.unwrap();
        let read = graph
            .comment(&reply)
            .fields(&[CommentField::Text, CommentField::ParentId])
            .send()
            .await
            .unwrap();
        assert_eq!(read.text.as_deref(), Some("Thank you!"));
        assert_eq!(read.parent_id.as_ref(), Some(&top.id));
        let refused = graph.reply_to_comment(&reply, "again").await.unwrap_err();
        assert!(
            matches!(refused, Error::CannotReply(ReplyRefused::NotTopLevel)),
            "{refused:?}"
        );
        let listed: Vec<_> = graph.replies(&top.id).into_stream().try_collect().await.unwrap();
        assert_eq!(listed[0].id, reply, "newest first");

        assert!(graph.delete_comment(&top.id).send().await.unwrap().success);
        let gone = graph.comment(&reply).send().await.unwrap_err();
        assert_eq!(gone.code(), Some(100), "{case:?}: its replies went with it");

        let tagged: Vec<_> = graph
            .tags()
            .fields(&[MediaField::Username])
            .limit(1)
            .into_stream()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(tagged.len(), 2, "{case:?}: a page each, followed by cursor");
        assert!(
            tagged.iter().all(|m| m.username.as_deref() != Some("jayposiris")),
            "others' posts"
        );

        graph.set_comments_enabled(&post.id, false).send().await.unwrap();
        let open = comments
            .iter()
            .find(|c| c.id != top.id && c.hidden == Some(false))
            .unwrap();
        let refused = graph.reply_to_comment(&open.id, "hi").await.unwrap_err();
        assert_eq!(
            refused.code(),
            Some(100),
            "{case:?}: comments are off: {refused:?}"
        );
    }
}

#[tokio::test]
async fn basic_display_has_no_comments_and_sends_nothing() {
    let case = cases()
        .into_iter()
        .find(|c| c.platform == Platform::BasicDisplay)
        .unwrap();
    let mock = case.mock();
    let instagram = case.client(&mock);
    let token = crate::login(&mock, &instagram, "jayposiris").await;
    let graph = instagram.graph(&token.user_id);
    let before = mock.requests_total();
    let id = igdisplay::model::MediaId::new("17900000000000001");
    assert!(matches!(
        graph.comments(&id).send().await,
        Err(Error::InvalidRequest(_))
    ));
    let comment = igdisplay::model::CommentId::new("18000000000000001");
    assert!(matches!(
        graph.hide_comment(&comment, true).send().await,
        Err(Error::InvalidRequest(_))
    ));
    assert_eq!(mock.requests_total(), before);
}

#[tokio::test]
async fn an_accounts_webhook_subscription_is_made_read_and_ended() {
    use igdisplay::graph::WebhookField;
    for case in cases()
        .into_iter()
        .filter(|c| c.platform == Platform::InstagramLogin)
    {
        let mock = case.mock();
        let instagram = case.client(&mock);
        let token = crate::login(&mock, &instagram, "cafe_nova").await;
        let graph = instagram.graph(&token.user_id);
        assert!(
            graph.subscriptions().send().await.unwrap().data.is_empty(),
            "none at first"
        );
        let fields = [WebhookField::Comments, WebhookField::Mentions];
        assert!(graph.subscribe(&fields).send().await.unwrap().success);
        let listed = graph.subscriptions().send().await.unwrap();
        assert_eq!(
            listed.data[0].subscribed_fields,
            ["comments", "mentions"],
            "{case:?}"
        );
        assert_eq!(listed.data[0].id.as_deref(), Some(mock.app().id.as_str()));
        assert!(graph.unsubscribe().send().await.unwrap().success);
        assert!(graph.subscriptions().send().await.unwrap().data.is_empty());
    }
}
