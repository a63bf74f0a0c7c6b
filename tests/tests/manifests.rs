use ecs_operator_tests::{aws_actions, workspace_root};

#[test]
fn dump() {
    let scan = aws_actions::scan(&workspace_root());
    for p in &scan.problems {
        println!("PROBLEM {p}");
    }
    for (a, calls) in scan.actions() {
        println!(
            "{a}  {}",
            calls
                .iter()
                .map(|c| c.location())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!("{} actions", scan.actions().len());
}
