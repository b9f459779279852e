//! docs/ARCHITECTURE.md must cover every workspace member and state its invariants.
//!
//! A member is covered when a Markdown heading names its directory in backticks (`` `hub/` ``
//! or `` `hub` ``) and that heading's section (up to the next heading of the same or a higher
//! level) has at least one line with "Architecture Invariant".

use std::path::Path;

use super::Violation;

/// The phrase every crate section must contain, as in rust-analyzer's ARCHITECTURE.md.
const INVARIANT: &str = "Architecture Invariant";

#[derive(Debug)]
struct Section<'a> {
    heading: &'a str,
    level: usize,
    body: Vec<&'a str>,
}

/// Check `text` (the contents of `path`) against the member directories `member_dirs`.
pub fn check_architecture_doc(path: &Path, text: &str, member_dirs: &[&str]) -> Vec<Violation> {
    let sections = sections(text);
    let mut violations = Vec::new();
    for dir in member_dirs {
        let names = [format!("`{dir}/`"), format!("`{dir}`")];
        let section = sections.iter().position(|section| {
            names
                .iter()
                .any(|name| section.heading.contains(name.as_str()))
        });
        let Some(index) = section else {
            violations.push(Violation::new(
                path,
                "architecture-doc",
                format!("no heading names the workspace member `{dir}/`: add one to the code map"),
            ));
            continue;
        };
        let has_invariant =
            section_with_subsections(&sections, index).any(|line| line.contains(INVARIANT));
        if !has_invariant {
            violations.push(Violation::new(
                path,
                "architecture-doc",
                format!("the section on `{dir}/` has no \"**{INVARIANT}:**\" line"),
            ));
        }
    }
    violations
}

/// The body of `sections[index]` and of the deeper sections nested under it.
fn section_with_subsections<'a>(
    sections: &'a [Section<'a>],
    index: usize,
) -> impl Iterator<Item = &'a str> + 'a {
    let level = sections[index].level;
    let nested = sections[index + 1..]
        .iter()
        .take_while(move |section| section.level > level);
    std::iter::once(&sections[index])
        .chain(nested)
        .flat_map(|section| section.body.iter().copied())
}

/// Split Markdown into heading sections, ignoring `#` lines inside code fences.
fn sections(text: &str) -> Vec<Section<'_>> {
    let mut sections = Vec::new();
    let mut in_fence = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            in_fence = !in_fence;
        }
        let level = trimmed.chars().take_while(|&c| c == '#').count();
        let is_heading = !in_fence && level > 0 && trimmed[level..].starts_with(' ');
        if is_heading {
            sections.push(Section {
                heading: trimmed[level..].trim(),
                level,
                body: Vec::new(),
            });
        } else if let Some(current) = sections.last_mut() {
            current.body.push(line);
        }
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# Architecture\n\n## Code map\n\n\
        ### `crdt-model/`\nThe domain model.\n\n**Architecture Invariant:** no IO.\n\n\
        ### `hub`\nThe hub.\n#### Routes\n**Architecture Invariant:** stateless.\n\n\
        ### `tests/`\nEnd-to-end scenarios.\n\n\
        ## Cross-cutting\n**Architecture Invariant:** money is i64 kopecks.\n";

    fn check(dirs: &[&str]) -> Vec<String> {
        check_architecture_doc(Path::new("docs/ARCHITECTURE.md"), DOC, dirs)
            .into_iter()
            .map(|violation| violation.message)
            .collect()
    }

    #[test]
    fn covered_members_pass() {
        assert!(check(&["crdt-model", "hub"]).is_empty());
    }

    #[test]
    fn a_member_without_a_heading_is_named() {
        let messages = check(&["crdt-model", "sync-engine"]);
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(messages[0].contains("`sync-engine/`"), "{messages:?}");
    }

    #[test]
    fn a_section_without_an_invariant_fails_even_if_a_later_one_has_it() {
        let messages = check(&["tests"]);
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(
            messages[0].contains("no \"**Architecture Invariant:**\""),
            "{messages:?}"
        );
    }

    #[test]
    fn headings_inside_code_fences_do_not_count() {
        let doc = "# A\n```\n# `web/`\n**Architecture Invariant:** x\n```\n";
        let violations = check_architecture_doc(Path::new("A.md"), doc, &["web"]);
        assert_eq!(violations.len(), 1, "{violations:?}");
    }
}
