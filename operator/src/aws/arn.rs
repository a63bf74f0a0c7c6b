//! The six fields of an ARN (`arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`), split once for
//! every reader (event routing, the console links). The resource keeps its own `:` and `/`.

/// An ARN split into its fields; borrowed from the string it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arn<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    /// `s` split into its fields; `None` unless it starts with `arn:` and has all six.
    pub fn parse(s: &'a str) -> Option<Arn<'a>> {
        let mut parts = s.splitn(6, ':');
        let (
            Some("arn"),
            Some(partition),
            Some(service),
            Some(region),
            Some(account),
            Some(resource),
        ) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        )
        else {
            return None;
        };
        Some(Arn {
            partition,
            service,
            region,
            account,
            resource,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_arn_splits_into_six_fields_and_the_resource_keeps_its_colons() {
        assert_eq!(
            Arn::parse("arn:aws:logs:eu-west-1:123456789012:log-group:/ecs/web:*"),
            Some(Arn {
                partition: "aws",
                service: "logs",
                region: "eu-west-1",
                account: "123456789012",
                resource: "log-group:/ecs/web:*",
            })
        );
        assert_eq!(
            Arn::parse("arn:aws:iam::123456789012:role/x").map(|a| a.region),
            Some("")
        );
    }

    #[test]
    fn anything_else_is_not_an_arn() {
        assert_eq!(Arn::parse("aws:ecs:eu-west-1:1:service/c/s"), None);
        assert_eq!(Arn::parse("arn:aws:ecs:eu-west-1"), None);
        assert_eq!(Arn::parse(""), None);
    }
}
