use sightline_macros::traced;

#[traced]
struct Order {
    id: u64,
}

fn main() {}
