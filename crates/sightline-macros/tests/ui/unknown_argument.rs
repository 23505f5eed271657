use sightline_macros::traced;

#[traced(record(order_id, amount))]
fn charge(order_id: u64) {}

fn main() {}
