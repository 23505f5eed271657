use sightline_macros::traced;

#[traced(record(order_id), skip(token))]
fn charge(order_id: u64, token: &str) {}

fn main() {}
