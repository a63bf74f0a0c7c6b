//! Listings that continue with a token (ELBv2's `Marker`, ECR's and ACM's `NextToken`).

use std::future::Future;

use crate::resources::error::ResourceError;

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
}
