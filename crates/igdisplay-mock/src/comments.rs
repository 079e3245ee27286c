//! Comment threads of media items (reference C.2), domain data only: who wrote what, when,
//! hidden or not, and which comment a reply answers. A media item's thread is made the first
//! time its comments are read or changed, from a generator seeded by the world's seed and the
//! media id, so one seed gives the same comments whatever order they are read in, and a
//! library of 100,000 posts costs nothing until its comments are asked for.

use crate::rng::Rng;

/// Commenters of the generated threads.
const COMMENTERS: [&str; 6] = [
    "ana.lopes",
    "mika_k",
    "the_real_tom",
    "lea",
    "studio.north",
    "b3n",
];

/// What they write: plain words, emoji, and text that looks like markup (a client must show
/// it as text).
const TEXTS: [&str; 8] = [
    "Lovely light ✨",
    "Where was this taken?",
    "<b>not bold</b> just text",
    "🔥🔥🔥",
    "So good!",
    "Can I order this online?",
    "Wow 😍",
    "Saving this for later",
];

/// One comment or reply.
#[derive(Clone, Debug)]
pub(crate) struct MockComment {
    /// Its id: digits, like Instagram's.
    pub(crate) id: String,
    /// The comment a reply answers; `None` for a top-level comment.
    pub(crate) parent: Option<String>,
    /// The commenter's username.
    pub(crate) username: String,
    /// The commenter's Instagram-scoped id.
    pub(crate) from_id: String,
    /// What was written.
    pub(crate) text: String,
    /// When, Unix seconds of mock time.
    pub(crate) timestamp: i64,
    /// Likes.
    pub(crate) likes: u64,
    /// Hidden by the account.
    pub(crate) hidden: bool,
}

/// A media item's comments, oldest first, and whether new ones are allowed.
#[derive(Clone, Debug)]
pub(crate) struct Thread {
    /// Oldest first; a reply always after its comment.
    pub(crate) comments: Vec<MockComment>,
    /// `is_comment_enabled`: the account may turn comments off.
    pub(crate) enabled: bool,
}

impl Thread {
    /// The thread of `count` comments (every fourth a reply to the latest top-level one,
    /// every ninth top-level one hidden) on media `media_id` posted at `posted`, ten minutes
    /// apart, drawn from a generator of `seed` and the id. Ids are drawn until `taken` says
    /// one is free.
    pub(crate) fn generate(
        seed: u64,
        media_id: &str,
        count: u64,
        posted: i64,
        taken: impl Fn(&str) -> bool,
    ) -> Self {
        let mixed = media_id.bytes().fold(seed ^ 0xC0FF_EE00, |acc, b| {
            acc.wrapping_mul(31).wrapping_add(u64::from(b))
        });
        let mut rng = Rng::new(mixed);
        let mut comments: Vec<MockComment> = Vec::new();
        let mut latest_top: Option<String> = None;
        let mut top_count = 0u64;
        for n in 0..count {
            let id = fresh_id(&mut rng, |id| taken(id) || comments.iter().any(|c| c.id == id));
            let who = rng.below(COMMENTERS.len() as u64) as usize;
            let parent = match &latest_top {
                Some(top) if n % 4 == 3 => Some(top.clone()),
                _ => None,
            };
            let hidden = parent.is_none() && {
                top_count += 1;
                top_count.is_multiple_of(9)
            };
            let step = i64::try_from(n).unwrap_or(i64::MAX / 1200).saturating_add(1);
            comments.push(MockComment {
                id: id.clone(),
                parent: parent.clone(),
                username: COMMENTERS.get(who).copied().unwrap_or("lea").to_owned(),
                from_id: format!("17841{:011}", rng.below(100_000_000_000)),
                text: TEXTS
                    .get(rng.below(TEXTS.len() as u64) as usize)
                    .copied()
                    .unwrap_or("So good!")
                    .to_owned(),
                timestamp: posted.saturating_add(step.saturating_mul(600)),
                likes: rng.below(25),
                hidden,
            });
            if parent.is_none() {
                latest_top = Some(id);
            }
        }
        Self {
            comments,
            enabled: true,
        }
    }

    /// The comment or reply `id`.
    pub(crate) fn find(&self, id: &str) -> Option<&MockComment> {
        self.comments.iter().find(|c| c.id == id)
    }

    /// The top-level comments, newest first.
    pub(crate) fn top_level(&self) -> Vec<&MockComment> {
        self.comments
            .iter()
            .rev()
            .filter(|c| c.parent.is_none())
            .collect()
    }

    /// The replies to `id`, newest first.
    pub(crate) fn replies(&self, id: &str) -> Vec<&MockComment> {
        self.comments
            .iter()
            .rev()
            .filter(|c| c.parent.as_deref() == Some(id))
            .collect()
    }

    /// Removes `id` and, for a top-level comment, its replies; returns the ids removed.
    pub(crate) fn remove(&mut self, id: &str) -> Vec<String> {
        let (gone, kept): (Vec<MockComment>, Vec<MockComment>) = std::mem::take(&mut self.comments)
            .into_iter()
            .partition(|c| c.id == id || c.parent.as_deref() == Some(id));
        self.comments = kept;
        gone.into_iter().map(|c| c.id).collect()
    }

    /// `comments_count`: comments and replies.
    pub(crate) fn count(&self) -> u64 {
        u64::try_from(self.comments.len()).unwrap_or(u64::MAX)
    }
}

/// A comment id Instagram's shape (`18` and 15 digits) that `taken` does not know.
pub(crate) fn fresh_id(rng: &mut Rng, taken: impl Fn(&str) -> bool) -> String {
    loop {
        let id = format!("18{:015}", rng.below(1_000_000_000_000_000));
        if !taken(&id) {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_is_the_same_for_one_seed_and_media_and_has_replies_and_hidden_comments() {
        let one = Thread::generate(7, "17900000000000001", 40, 1_700_000_000, |_| false);
        let again = Thread::generate(7, "17900000000000001", 40, 1_700_000_000, |_| false);
        let other = Thread::generate(7, "17900000000000002", 40, 1_700_000_000, |_| false);
        assert_eq!(one.count(), 40);
        let ids = |t: &Thread| t.comments.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&one), ids(&again), "deterministic");
        assert_ne!(ids(&one), ids(&other));
        let top = one.top_level();
        assert_eq!(top.len(), 30, "every fourth is a reply");
        assert!(top.iter().any(|c| c.hidden));
        assert!(
            top.windows(2).all(|w| w[0].timestamp > w[1].timestamp),
            "newest first"
        );
        let with_replies = top.iter().find(|c| !one.replies(&c.id).is_empty()).unwrap();
        let id = with_replies.id.clone();
        let mut thread = one.clone();
        let removed = thread.remove(&id);
        assert!(removed.len() >= 2, "the comment and its replies");
        assert!(thread.find(&id).is_none() && thread.replies(&id).is_empty());
    }
}
