//! Garbage collection: every ECR repository of the account whose tags name an owner of this
//! instance (DescribeRepositories, all pages, then one tag read per repository).

use super::{list_all, tags_of, TYPE};
use crate::resources::kind::GcScan;
use crate::resources::run::SpecRun;
use crate::resources::shared::tags::owner_of;
use crate::resources::ResourceError;

pub async fn list_owned(run: &SpecRun<'_>, scan: &mut GcScan) -> Result<(), ResourceError> {
    let all = list_all(run).await?;
    for arn in all.values().filter_map(|r| r.repository_arn()) {
        if let Some(owner) = owner_of(&run.aws.instance, &tags_of(run, arn, arn).await?) {
            scan.add(owner, TYPE, arn);
        }
    }
    Ok(())
}
