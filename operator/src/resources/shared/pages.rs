//! Listings that continue with a token (ELBv2's `Marker`, ECR's and ACM's `NextToken`).

use std::collections::HashMap;
use std::future::Future;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::aws::Service;
use crate::resources::context::Aws;
use crate::resources::error::ResourceError;
use crate::resources::run::SpecRun;
use crate::resources::snapshot::Entry;

/// Every page of a listing, in order: `call(token)` fetches one page (`None`: the first one),
/// `next(page)` is the token of the page after it; an absent or empty token ends the listing.
pub async fn all_pages<P, C, Fut>(
    mut call: C,
    next: fn(&P) -> Option<&str>,
) -> Result<Vec<P>, ResourceError>
where
    C: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<P, ResourceError>>,
{
    let mut pages = Vec::new();
    let mut token = None;
    loop {
        let page = call(token.take()).await?;
        let more = next(&page).filter(|t| !t.is_empty()).map(str::to_string);
        pages.push(page);
        match more {
            Some(t) => token = Some(t),
            None => return Ok(pages),
        }
    }
}

/// Every page of the listing `operation` (a read of `service`, `*` in the call record):
/// `send(token)` sends the request for one page, as [`all_pages`] follows them.
pub async fn read_pages<P, E, R, C, Fut>(
    aws: &Aws,
    service: Service,
    operation: &'static str,
    mut send: C,
    next: fn(&P) -> Option<&str>,
) -> Result<Vec<P>, ResourceError>
where
    C: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<P, SdkError<E, R>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    all_pages(|token| aws.read(service, operation, "*", send(token)), next).await
}

/// The items of every page by their name (`name`; an item without one is left out), as
/// `value` makes them; a later item of the same name replaces an earlier one.
pub fn by_name<P, T, V>(
    pages: &[P],
    items: fn(&P) -> &[T],
    name: fn(&T) -> Option<&str>,
    value: impl Fn(&T) -> V,
) -> HashMap<String, V> {
    pages
        .iter()
        .flat_map(items)
        .filter_map(|item| Some((name(item)?.to_string(), value(item))))
        .collect()
}

/// The resource `name` as a listing by name has it: in a resync wave, from the wave's
/// listing `entry` (every resource by name, read once a wave by `list`); outside a wave (or
/// after this run wrote), read alone by `one`. `None` when it does not exist.
///
/// `list` and `one` are closures, so that only the future that runs is ever built: the
/// caller's future stays the size of the larger one, not of both.
pub async fn one_by_name<T, L, O>(
    run: &SpecRun<'_>,
    entry: Entry,
    name: &str,
    list: impl FnOnce() -> L,
    one: impl FnOnce() -> O,
) -> Result<Option<T>, ResourceError>
where
    T: Clone + Send + Sync + 'static,
    L: Future<Output = Result<HashMap<String, T>, ResourceError>>,
    O: Future<Output = Result<Option<T>, ResourceError>>,
{
    match run.cached(entry, |_| list()).await {
        Some(all) => Ok(all?.get(name).cloned()),
        None => one().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pages_are_followed_until_the_token_is_absent_or_empty() {
        let tokens = [Some("b"), Some("c"), Some("")];
        let mut asked = Vec::new();
        let pages = all_pages(
            |token: Option<String>| {
                asked.push(token.clone());
                let n = asked.len() - 1;
                async move { Ok::<_, ResourceError>((n, tokens[n].map(str::to_string))) }
            },
            |p: &(usize, Option<String>)| p.1.as_deref(),
        )
        .await
        .unwrap();
        assert_eq!(pages.iter().map(|p| p.0).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(asked, [None, Some("b".to_string()), Some("c".to_string())]);
    }

    #[test]
    fn items_are_keyed_by_name_across_pages_and_nameless_ones_are_left_out() {
        let pages = vec![
            vec![(Some("a"), 1), (None, 2)],
            vec![(Some("b"), 3), (Some("a"), 4)],
        ];
        let named = by_name(&pages, |p| p.as_slice(), |i| i.0, |i| i.1 * 10);
        assert_eq!(named.len(), 2);
        assert_eq!(named["a"], 40);
        assert_eq!(named["b"], 30);
    }
}
