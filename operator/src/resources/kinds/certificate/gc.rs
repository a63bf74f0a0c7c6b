//! Garbage collection: every ACM certificate of the account whose tags name an owner of this
//! instance (ListCertificates, all pages, then one tag read per certificate).

use super::{tags_of, TYPE};
use crate::aws::Service;
use crate::resources::kind::GcScan;
use crate::resources::run::SpecRun;
use crate::resources::shared::tags::owner_of;
use crate::resources::ResourceError;

pub async fn list_owned(run: &SpecRun<'_>, scan: &mut GcScan) -> Result<(), ResourceError> {
    let page = run
        .aws
        .read(
            Service::Acm,
            "ListCertificates",
            "*",
            run.aws
                .acm
                .list_certificates()
                .into_paginator()
                .items()
                .send()
                .try_collect(),
        )
        .await?;
    for c in &page {
        let Some(arn) = c.certificate_arn() else {
            continue;
        };
        let Some(tags) = tags_of(run, arn).await? else {
            continue;
        };
        if let Some(owner) = owner_of(&run.aws.instance, &tags) {
            scan.add(owner, TYPE, arn);
        }
    }
    Ok(())
}
