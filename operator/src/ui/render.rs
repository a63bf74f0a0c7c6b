//! The web page's HTML (pure): server-rendered, inline CSS, no script, nothing loaded from
//! elsewhere, a `<meta http-equiv="refresh">` for the automatic reload, and no form or button
//! (the page cannot change anything).
//!
//! Invariant: every value that comes from a view goes through [`esc`] (the one escaping
//! function, [`super::html::escape`]); only literals of this file are written unescaped.

use std::fmt::Write;

use super::html::{escape as esc, path_segment};
use super::recent::short;
use super::view::{Header, Overview, SpecDetail, SpecRow};
use crate::store::{Condition, Phase};

const STYLE: &str = r#"
:root{--bg:#f6f7f9;--card:#fff;--ink:#1d2330;--mute:#667085;--line:#e4e7ec;--link:#1f5fbf}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;background:var(--bg);color:var(--ink)}
header{background:#232f3e;color:#fff;padding:12px 24px;display:flex;flex-wrap:wrap;align-items:baseline;gap:8px 24px}
header h1{font-size:18px;margin:0;font-weight:600}
header h1 a{color:#fff;text-decoration:none}
header .facts{color:#c9d1dc;font-size:13px;display:flex;flex-wrap:wrap;gap:4px 18px}
header .facts b{color:#fff;font-weight:600}
main{padding:20px 24px;max-width:1400px}
h2{font-size:15px;margin:24px 0 8px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:8px 12px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--mute);background:#fafbfc;font-weight:600}
tr:last-child td{border-bottom:0}
a{color:var(--link)}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,"DejaVu Sans Mono",monospace;font-size:12.5px}
.mute{color:var(--mute)}
.err{color:#b42318}
.warn{color:#b54708}
.msg{max-width:60ch;overflow-wrap:anywhere}
.id{overflow-wrap:anywhere;max-width:70ch}
.phase{display:inline-block;padding:1px 9px;border-radius:999px;font-size:12px;font-weight:600;border:1px solid transparent;white-space:nowrap}
.p-Ready{background:#dcfae6;color:#067647;border-color:#abefc6}
.p-Progressing,.p-Pending{background:#eff4ff;color:#1849a9;border-color:#c7d7fe}
.p-Degraded{background:#fffaeb;color:#b54708;border-color:#fedf89}
.p-Failed,.p-Invalid{background:#fef3f2;color:#b42318;border-color:#fecdca}
.p-Deleting{background:#f4f3ff;color:#5925dc;border-color:#d9d6fe}
.p-Paused,.p-Unknown{background:#f2f4f7;color:#344054;border-color:#d0d5dd}
.s-True{color:#067647;font-weight:600}.s-False{color:#b42318;font-weight:600}.s-Unknown{color:var(--mute)}
.summary{display:flex;flex-wrap:wrap;gap:8px;margin:0 0 12px}
.banner{padding:10px 14px;border-radius:8px;margin:0 0 14px;border:1px solid #fedf89;background:#fffaeb;color:#7a2e0e}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:6px 18px;margin:0;padding:14px 16px}
dl.facts dt{color:var(--mute)}dl.facts dd{margin:0}
pre{margin:0;padding:12px 16px;white-space:pre-wrap;overflow-wrap:anywhere;font:12.5px/1.5 ui-monospace,Menlo,"DejaVu Sans Mono",monospace}
footer{padding:8px 24px 24px;color:var(--mute);font-size:12px}
"#;

/// The list of every spec.
pub fn overview(o: &Overview) -> String {
    let mut body = String::new();
    banners(&mut body, &o.header);
    if !o.unattributed.is_empty() {
        let _ = write!(
            body,
            r#"<div class="banner"><b>{} store problem(s) name no spec</b>; deletions wait until they are fixed. First: <span class="mono">{}</span></div>"#,
            o.unattributed.len(),
            esc(&o.unattributed[0])
        );
    }
    body.push_str(r#"<div class="summary">"#);
    let mut counts: Vec<(String, usize)> = Vec::new();
    for r in &o.rows {
        let p = phase_name(r.phase);
        match counts.iter_mut().find(|(n, _)| *n == p) {
            Some((_, c)) => *c += 1,
            None => counts.push((p.to_string(), 1)),
        }
    }
    counts.sort();
    for (p, n) in &counts {
        let _ = write!(body, r#"<span class="phase p-{p}">{n} {p}</span>"#);
    }
    let _ = write!(
        body,
        r#"<span class="mute">{} spec(s)</span></div>"#,
        o.rows.len()
    );
    body.push_str(
        r#"<div class="card"><table id="specs"><thead><tr><th>Kind</th><th>Name</th><th>Phase</th><th>Generation</th><th title="since this operator process first listed the spec">Age</th><th>Last error / message</th></tr></thead><tbody>"#,
    );
    if o.rows.is_empty() {
        body.push_str(r#"<tr><td colspan="6" class="mute">The store holds no spec.</td></tr>"#);
    }
    for r in &o.rows {
        let _ = write!(
            body,
            r#"<tr data-spec="{key}"><td>{kind}</td><td><a href="{href}">{name}</a></td><td>{phase}</td><td>{gen}</td><td>{age}</td><td class="msg{cls}">{msg}</td></tr>"#,
            key = esc(&r.key().to_string()),
            kind = esc(r.kind.as_str()),
            href = esc(&spec_href(r)),
            name = esc(&r.name),
            phase = phase_badge(r.phase),
            gen = generation_cell(r),
            age = r.age.map(short).unwrap_or_else(|| "–".into()),
            cls = if r.is_error { " err" } else { "" },
            msg = esc(&r.message),
        );
    }
    body.push_str("</tbody></table></div>");
    page("specs", &o.header, &body)
}

/// One spec's page.
pub fn spec_page(d: &SpecDetail) -> String {
    let r = &d.row;
    let mut body = String::new();
    banners(&mut body, &d.header);
    let _ = write!(
        body,
        r#"<p><a href="/">← all specs</a></p><h2 style="font-size:20px;margin-top:4px">{} <span class="mono" style="font-size:inherit">{}</span> {}</h2>"#,
        esc(r.kind.as_str()),
        esc(&r.name),
        phase_badge(r.phase),
    );
    body.push_str(r#"<div class="card"><dl class="facts">"#);
    fact(
        &mut body,
        "Generation",
        &match &r.generation {
            Some(g) => format!(r#"<span class="mono">{}</span>"#, esc(g)),
            None => r#"<span class="warn">gone from the store</span>"#.into(),
        },
    );
    fact(
        &mut body,
        "Observed generation",
        &match &r.observed {
            Some(g) if r.in_sync() => format!(
                r#"<span class="mono">{}</span> <span class="mute">(current)</span>"#,
                esc(g)
            ),
            Some(g) => format!(
                r#"<span class="mono">{}</span> <span class="warn">(behind the store)</span>"#,
                esc(g)
            ),
            None => r#"<span class="mute">not reconciled yet</span>"#.into(),
        },
    );
    if let Some(a) = r.age {
        fact(
            &mut body,
            "Age",
            &format!(
                "{} <span class=\"mute\">(since this process first listed it)</span>",
                short(a)
            ),
        );
    }
    if let Some(o) = &d.origin {
        fact(
            &mut body,
            "Source",
            &format!(r#"<span class="mono">{}</span>"#, esc(o)),
        );
    }
    if let Some(u) = &d.updated_at {
        fact(&mut body, "Status written", &esc(u));
    }
    if let Some(p) = &d.deletion_policy {
        fact(&mut body, "Deletion policy", &esc(p));
    }
    body.push_str("</dl></div>");

    if let Some(diag) = &d.diagnostics {
        let _ = write!(
            body,
            r#"<h2 class="err">Validation errors</h2><div class="card"><pre class="err">{}</pre></div>"#,
            esc(diag)
        );
    }
    if let Some(e) = &d.last_error {
        let _ = write!(
            body,
            r#"<h2 class="err">Last error</h2><div class="card"><pre class="err" id="last-error">{}</pre></div>"#,
            esc(e)
        );
    }

    body.push_str("<h2>Rollout</h2>");
    if d.rollout.is_empty() {
        body.push_str(
            r#"<p class="mute">No deployment in progress is reported for this spec.</p>"#,
        );
    } else {
        conditions_table(&mut body, "rollout", &d.rollout);
    }

    body.push_str("<h2>Conditions</h2>");
    if d.conditions.is_empty() {
        body.push_str(r#"<p class="mute">No conditions reported yet.</p>"#);
    } else {
        conditions_table(&mut body, "conditions", &d.conditions);
    }

    let _ = write!(body, "<h2>Resources ({})</h2>", d.resources.len());
    if d.resources.is_empty() {
        body.push_str(r#"<p class="mute">No AWS resource recorded for this spec.</p>"#);
    } else {
        body.push_str(r#"<div class="card"><table id="resources"><thead><tr><th>Kind</th><th>ARN / name</th><th>Console</th></tr></thead><tbody>"#);
        for res in &d.resources {
            let link = match &res.console {
                Some(u) => format!(
                    r#"<a href="{}" target="_blank" rel="noopener noreferrer">open ↗</a>"#,
                    esc(u)
                ),
                None => r#"<span class="mute">–</span>"#.into(),
            };
            let _ = write!(
                body,
                r#"<tr><td class="mono">{}</td><td class="mono id">{}</td><td>{link}</td></tr>"#,
                esc(&res.kind),
                esc(&res.id),
            );
        }
        body.push_str("</tbody></table></div>");
    }

    let _ = write!(
        body,
        "<h2>Recent reconciles <span class=\"mute\" style=\"font-weight:400\">(this process, newest first, last {})</span></h2>",
        super::recent::Recent::PER_SPEC
    );
    if d.recent.is_empty() {
        body.push_str(r#"<p class="mute">None yet in this process.</p>"#);
    } else {
        body.push_str(r#"<div class="card"><table id="recent"><thead><tr><th>Ended</th><th>Took</th><th>Result</th><th>Phase after</th><th>Detail</th></tr></thead><tbody>"#);
        for o in &d.recent {
            let cls = match o.result {
                "retrying" | "failed" => " err",
                _ => "",
            };
            let _ = write!(
                body,
                r#"<tr><td class="mono">{}</td><td>{}</td><td class="{cls}">{}</td><td>{}</td><td class="msg{cls}">{}</td></tr>"#,
                esc(&o.at),
                esc(&short(o.took)),
                esc(o.result),
                phase_badge(o.phase),
                esc(&o.detail),
            );
        }
        body.push_str("</tbody></table></div>");
    }
    page(&r.key().to_string(), &d.header, &body)
}

/// The page for a spec this operator does not know.
pub fn not_found(header: &Header, what: &str) -> String {
    let body = format!(
        r#"<p><a href="/">← all specs</a></p><p>No spec <span class="mono">{}</span> in the store or in the status records.</p>"#,
        esc(what)
    );
    page("not found", header, &body)
}

fn page(title: &str, h: &Header, body: &str) -> String {
    let holder = match &h.lease_holder {
        Some(x) => format!(" (lease: {})", esc(x)),
        None => String::new(),
    };
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="{refresh}"><meta name="viewport" content="width=device-width, initial-scale=1"><title>ecs-operator · {title}</title><style>{STYLE}</style></head>
<body><header><h1><a href="/">ecs-operator</a></h1><div class="facts"><span>store <b>{store}</b></span><span>instance <b>{instance}</b></span><span>replica <b>{leader}</b>{holder}</span><span>as of <b>{at}</b></span></div></header>
<main>{body}</main>
<footer>Read-only view of this operator's state; it reloads every {refresh} s. <a href="/metrics">/metrics</a> · <a href="/readyz">/readyz</a></footer>
</body></html>
"#,
        refresh = h.refresh_seconds,
        title = esc(title),
        store = esc(&h.store),
        instance = esc(&h.instance),
        leader = esc(&h.leader),
        at = esc(&h.generated_at),
    )
}

fn banners(body: &mut String, h: &Header) {
    if !h.store_listed {
        body.push_str(r#"<div class="banner">The store has not been listed in full yet: nothing is reconciled before it is.</div>"#);
    }
    if let Some(e) = &h.last_store_error {
        let _ = write!(
            body,
            r#"<div class="banner">The last read of the store failed (the last good listing stays in force): <span class="mono">{}</span></div>"#,
            esc(e)
        );
    }
    if h.leader == "follower" || h.leader == "starting" {
        body.push_str(r#"<div class="banner">This replica does not hold the lease: it reconciles nothing, and the status shown is what it last read. The leader's page is current.</div>"#);
    }
}

fn fact(body: &mut String, name: &str, html: &str) {
    let _ = write!(body, "<dt>{}</dt><dd>{html}</dd>", esc(name));
}

fn conditions_table(body: &mut String, id: &str, conditions: &[Condition]) {
    let _ = write!(
        body,
        r#"<div class="card"><table id="{}"><thead><tr><th>Type</th><th>Status</th><th>Reason</th><th>Message</th><th>Last transition</th></tr></thead><tbody>"#,
        esc(id)
    );
    for c in conditions {
        let status_class = match c.status.as_str() {
            "True" => "True",
            "False" => "False",
            _ => "Unknown",
        };
        let _ = write!(
            body,
            r#"<tr><td>{}</td><td class="s-{status_class}">{}</td><td>{}</td><td class="msg">{}</td><td class="mono">{}</td></tr>"#,
            esc(&c.condition_type),
            esc(&c.status),
            esc(&c.reason),
            esc(&c.message),
            esc(&c.last_transition_time),
        );
    }
    body.push_str("</tbody></table></div>");
}

/// `Unknown` for a spec without a status record yet.
fn phase_name(p: Option<Phase>) -> &'static str {
    match p {
        Some(Phase::Pending) => "Pending",
        Some(Phase::Progressing) => "Progressing",
        Some(Phase::Ready) => "Ready",
        Some(Phase::Degraded) => "Degraded",
        Some(Phase::Failed) => "Failed",
        Some(Phase::Deleting) => "Deleting",
        Some(Phase::Paused) => "Paused",
        Some(Phase::Invalid) => "Invalid",
        None => "Unknown",
    }
}

fn phase_badge(p: Option<Phase>) -> String {
    let n = phase_name(p);
    let title = if p.is_none() {
        r#" title="not reconciled by this process yet""#
    } else {
        ""
    };
    format!(r#"<span class="phase p-{n}"{title}>{n}</span>"#)
}

fn generation_cell(r: &SpecRow) -> String {
    let short_digest = |g: &str| esc(&g.chars().take(12).collect::<String>());
    match (&r.generation, &r.observed) {
        (None, _) => r#"<span class="warn">gone from the store</span>"#.into(),
        (Some(g), Some(_)) if r.in_sync() => format!(
            r#"<span class="mono" title="observed = store">{}</span> <span class="mute">✓ observed</span>"#,
            short_digest(g)
        ),
        (Some(g), Some(o)) => format!(
            r#"<span class="mono">{}</span> <span class="warn">observed {}</span>"#,
            short_digest(g),
            short_digest(o)
        ),
        (Some(g), None) => format!(
            r#"<span class="mono">{}</span> <span class="mute">not observed yet</span>"#,
            short_digest(g)
        ),
    }
}

/// `/specs/<Kind>/<name>`, the name percent-encoded.
pub fn spec_href(r: &SpecRow) -> String {
    format!(
        "/specs/{}/{}",
        path_segment(r.kind.as_str()),
        path_segment(&r.name)
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::spec::Kind;
    use crate::ui::recent::Outcome;
    use crate::ui::view::ResourceView;

    const XSS: &str = r#"<script>alert("x")</script>"#;

    fn header() -> Header {
        Header {
            generated_at: "2026-01-01T00:00:00Z".into(),
            store: "s3://b/specs".into(),
            instance: "ecs-operator".into(),
            leader: "leader".into(),
            lease_holder: Some("a".into()),
            store_listed: true,
            last_store_error: None,
            refresh_seconds: 5,
        }
    }

    fn row(name: &str, phase: Option<Phase>, message: &str) -> SpecRow {
        SpecRow {
            kind: Kind::ServiceSpec,
            name: name.into(),
            phase,
            generation: Some("0123456789abcdef".into()),
            observed: Some("0123456789abcdef".into()),
            age: Some(Duration::from_secs(125)),
            message: message.into(),
            is_error: false,
        }
    }

    /// No element of the page comes from the input: the only `<` in the output are ours.
    fn assert_no_injected_markup(html: &str) {
        assert!(!html.contains("<script"), "a script element:\n{html}");
        assert!(
            html.contains("&lt;script&gt;"),
            "the text is not shown:\n{html}"
        );
    }

    #[test]
    fn the_overview_lists_every_spec_with_its_phase_and_a_link_to_its_page() {
        let o = Overview {
            header: header(),
            rows: vec![
                row("web", Some(Phase::Ready), "ready"),
                row("admin", None, ""),
            ],
            unattributed: Vec::new(),
        };
        let html = overview(&o);
        assert!(
            html.contains(r#"<a href="/specs/ServiceSpec/web">web</a>"#),
            "{html}"
        );
        assert!(html.contains(r#"<span class="phase p-Ready">Ready</span>"#));
        assert!(html.contains(r#"p-Unknown" title="not reconciled by this process yet""#));
        assert!(html.contains(r#"<meta http-equiv="refresh" content="5">"#));
        assert!(html.contains("2m 5s"));
        assert!(html.contains("1 Ready") && html.contains("1 Unknown"));
    }

    #[test]
    fn the_page_has_no_script_form_button_or_external_resource() {
        let o = Overview {
            header: header(),
            rows: vec![row("web", Some(Phase::Ready), "")],
            unattributed: Vec::new(),
        };
        let detail = SpecDetail {
            header: header(),
            row: row("web", Some(Phase::Ready), ""),
            origin: None,
            diagnostics: None,
            last_error: None,
            conditions: Vec::new(),
            rollout: Vec::new(),
            resources: vec![ResourceView {
                kind: "ecs:service".into(),
                id: "arn".into(),
                console: Some("https://eu-west-1.console.aws.amazon.com/ecs".into()),
            }],
            recent: Vec::new(),
            updated_at: None,
            deletion_policy: None,
        };
        for html in [overview(&o), spec_page(&detail)] {
            for banned in [
                "<script", "<form", "<button", "<input", "<link", "<img", "<iframe", "src=",
                "@import", "url(",
            ] {
                assert!(!html.contains(banned), "`{banned}` in:\n{html}");
            }
        }
        // The console link is a link, opened by a person, never loaded by the page.
        assert!(spec_page(&detail)
            .contains(r#"<a href="https://eu-west-1.console.aws.amazon.com/ecs" target="_blank""#));
    }

    #[test]
    fn names_messages_and_errors_from_the_input_are_escaped_everywhere() {
        let mut r = row(&format!("x{XSS}"), Some(Phase::Invalid), XSS);
        r.is_error = true;
        let mut h = header();
        h.last_store_error = Some(XSS.into());
        h.lease_holder = Some(XSS.into());
        let o = Overview {
            header: h.clone(),
            rows: vec![r.clone()],
            unattributed: vec![XSS.into()],
        };
        let html = overview(&o);
        assert_no_injected_markup(&html);
        // The link's path is percent-encoded, then escaped.
        assert!(
            html.contains("/specs/ServiceSpec/x%3Cscript%3Ealert%28%22x%22%29%3C%2Fscript%3E"),
            "{html}"
        );

        let cond = Condition {
            condition_type: XSS.into(),
            status: XSS.into(),
            reason: XSS.into(),
            message: XSS.into(),
            last_transition_time: XSS.into(),
        };
        let d = SpecDetail {
            header: h.clone(),
            row: r,
            origin: Some(XSS.into()),
            diagnostics: Some(XSS.into()),
            last_error: Some(XSS.into()),
            conditions: vec![cond.clone()],
            rollout: vec![cond],
            resources: vec![ResourceView {
                kind: XSS.into(),
                id: XSS.into(),
                console: Some(format!("https://x/\"{XSS}")),
            }],
            recent: vec![Outcome {
                at: XSS.into(),
                took: Duration::from_millis(3),
                result: "failed",
                detail: XSS.into(),
                phase: Some(Phase::Invalid),
            }],
            updated_at: Some(XSS.into()),
            deletion_policy: Some(XSS.into()),
        };
        let html = spec_page(&d);
        assert_no_injected_markup(&html);
        assert!(
            html.contains(r#"href="https://x/&quot;&lt;script&gt;"#),
            "{html}"
        );
        assert_no_injected_markup(&not_found(&h, XSS));
    }

    #[test]
    fn a_status_behind_the_store_and_a_spec_gone_from_it_are_called_out() {
        let mut behind = row("web", Some(Phase::Progressing), "");
        behind.observed = Some("fedcba9876543210".into());
        let html = overview(&Overview {
            header: header(),
            rows: vec![behind],
            unattributed: Vec::new(),
        });
        assert!(html.contains("observed fedcba987654"), "{html}");
        let mut gone = row("old", Some(Phase::Deleting), "");
        gone.generation = None;
        let html = overview(&Overview {
            header: header(),
            rows: vec![gone],
            unattributed: Vec::new(),
        });
        assert!(html.contains("gone from the store"));
    }
}
