//! The `fields` parameter: its parse (plain names, and edges expanded in either of the Graph
//! API's syntaxes) and a bounded cache of parses by their text.

/// A parsed `fields` value: plain names, and the edges expanded with their own fields.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    /// The plain fields, in the order asked (the answer keeps it).
    pub(crate) names: Vec<String>,
    /// Indices into `names`, sorted by name and each name once: the key order of an answer
    /// rendered straight to bytes (a `serde_json::Map` sorts the same way).
    pub(crate) by_name: Vec<usize>,
    /// `children{...}` or `children.fields(...)`: the fields of an album's items.
    pub(crate) children: Option<Vec<String>>,
    /// `media{...}`, `media.fields(...)`, `media.limit(n)...`: a user's first page of media.
    pub(crate) media: Option<Expansion>,
    /// `replies{...}`, `replies.limit(n)...`: a comment's first replies.
    pub(crate) replies: Option<Expansion>,
}

/// An edge asked for inside `fields`: its fields and an optional page size.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Expansion {
    /// The edge's own fields (`id` when none were named).
    pub(crate) fields: Vec<String>,
    /// The page size asked with `.limit(n)`, if any.
    pub(crate) limit: Option<usize>,
}

/// Splits `text` at the commas that are not inside braces or parentheses, trimming each part
/// and dropping empty ones: `id, children{id,media_url}, media.fields(a,b)` is three parts.
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0usize, 0);
    // The delimiters are ASCII, so byte offsets fall on character boundaries.
    for (i, c) in text.bytes().enumerate() {
        match c {
            b'{' | b'(' => depth += 1,
            b'}' | b')' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// One item of `fields`: `name`, `name{a,b}`, `name.fields(a,b)`, `name.limit(5)`, or a chain
/// of them (`media.limit(5){id}`). Returns the name and, for an expansion, its parts.
fn parse_item(item: &str) -> (String, Option<Expansion>) {
    // Most items are plain names.
    if !item.bytes().any(|b| matches!(b, b'{' | b'.' | b'(')) {
        return (item.to_owned(), None);
    }
    let (head, braces) = match item.split_once('{') {
        Some((head, rest)) => (head, Some(rest.strip_suffix('}').unwrap_or(rest))),
        None => (item, None),
    };
    let mut pieces = head.split('.');
    let name = pieces.next().unwrap_or_default().trim().to_owned();
    let mut expansion: Option<Expansion> = braces.map(|inner| Expansion {
        fields: split_top_level(inner).into_iter().map(str::to_owned).collect(),
        limit: None,
    });
    for modifier in pieces {
        let (call, argument) = match modifier.split_once('(') {
            Some((call, argument)) => (call.trim(), argument.strip_suffix(')').unwrap_or(argument)),
            None => (modifier.trim(), ""),
        };
        let edge = expansion.get_or_insert_with(Expansion::default);
        match call {
            "fields" => edge.fields = split_top_level(argument).into_iter().map(str::to_owned).collect(),
            "limit" => edge.limit = argument.trim().parse().ok(),
            _ => {}
        }
    }
    if let Some(edge) = &mut expansion
        && edge.fields.is_empty()
    {
        edge.fields.push("id".to_owned());
    }
    (name, expansion)
}

/// Parsed `fields` values by their text: clients send the same few again and again, so a
/// request reads its parse instead of parsing (and allocating) anew. Bounded: values longer
/// than 1 KiB are parsed and not kept, and the cache is emptied when it holds 256.
#[derive(Debug, Default)]
pub(crate) struct FieldsCache(crate::FastMap<String, std::sync::Arc<Fields>>);

impl FieldsCache {
    const CAPACITY: usize = 256;
    const LONGEST: usize = 1024;

    /// The parse of `text`, from the cache or parsed now.
    pub(crate) fn get(&mut self, text: Option<&str>) -> std::sync::Arc<Fields> {
        let key = text.unwrap_or_default();
        if let Some(fields) = self.0.get(key) {
            return fields.clone();
        }
        let fields = std::sync::Arc::new(parse_fields(text));
        if key.len() > Self::LONGEST {
            return fields;
        }
        if self.0.len() >= Self::CAPACITY {
            self.0.clear();
        }
        self.0.insert(key.to_owned(), fields.clone());
        fields
    }
}

/// Reads a `fields` value: comma-separated names, with edge expansions in either of the Graph
/// API's syntaxes (`children{id,media_url}` or `children.fields(id,media_url)`, and on a user
/// `media.limit(5){id,caption}`). No value (or a blank one) means `id` alone, as Instagram
/// answers a request without `fields`.
pub(crate) fn parse_fields(text: Option<&str>) -> Fields {
    let mut fields = Fields::default();
    match text.filter(|t| !t.trim().is_empty()) {
        None => fields.names.push("id".to_owned()),
        Some(text) => {
            for item in split_top_level(text) {
                match parse_item(item) {
                    (name, Some(edge)) if name == "children" => fields.children = Some(edge.fields),
                    (name, Some(edge)) if name == "media" => fields.media = Some(edge),
                    (name, Some(edge)) if name == "replies" => fields.replies = Some(edge),
                    (name, None) if name == "children" => fields.children = Some(vec!["id".to_owned()]),
                    (name, _) => fields.names.push(name),
                }
            }
        }
    }
    let names = &fields.names;
    let mut by_name: Vec<usize> = (0..names.len()).collect();
    by_name.sort_by(|a, b| names[*a].cmp(&names[*b]));
    by_name.dedup_by(|a, b| names[*a] == names[*b]);
    fields.by_name = by_name;
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_parse_with_children_expansion() {
        let fields = parse_fields(Some("id, caption,children{id,media_url},timestamp"));
        assert_eq!(fields.names, ["id", "caption", "timestamp"]);
        assert_eq!(fields.children.unwrap(), ["id", "media_url"]);
        assert_eq!(parse_fields(None).names, ["id"]);
        let mut cache = FieldsCache::default();
        let first = cache.get(Some("id,caption"));
        assert!(
            std::sync::Arc::ptr_eq(&first, &cache.get(Some("id,caption"))),
            "parsed once"
        );
        assert_eq!(cache.get(None).names, ["id"]);
        for n in 0..300 {
            cache.get(Some(&format!("id,f{n}")));
        }
        assert!(cache.0.len() <= FieldsCache::CAPACITY, "bounded");
        cache.get(Some(&"x,".repeat(1000)));
        assert!(
            cache.0.keys().all(|k| k.len() <= FieldsCache::LONGEST),
            "long values not kept"
        );
        assert_eq!(parse_fields(Some("children")).children.unwrap(), ["id"]);
    }

    #[test]
    fn both_expansion_syntaxes_parse_alike() {
        let dotted = parse_fields(Some("id,children.fields(id,media_url)"));
        assert_eq!(dotted.children.unwrap(), ["id", "media_url"]);
        let media = parse_fields(Some("id,username,media.limit(5){id,caption,children{id}}"));
        assert_eq!(media.names, ["id", "username"]);
        let edge = media.media.unwrap();
        assert_eq!(
            (edge.fields.as_slice(), edge.limit),
            (
                &["id".to_owned(), "caption".to_owned(), "children{id}".to_owned()][..],
                Some(5)
            )
        );
        let chained = parse_fields(Some("media.fields(id).limit(2)")).media.unwrap();
        assert_eq!(
            chained,
            Expansion {
                fields: vec!["id".to_owned()],
                limit: Some(2)
            }
        );
    }
}
