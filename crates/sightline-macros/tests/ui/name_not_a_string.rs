use sightline_macros::traced;

#[traced(name = checkout)]
fn charge() {}

fn main() {}
