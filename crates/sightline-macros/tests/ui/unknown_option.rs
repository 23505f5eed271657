use sightline_macros::traced;

#[traced(level = "debug")]
fn charge() {}

fn main() {}
