#[test]
fn dump() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut paths: Vec<_> = walk(&dir);
    paths.sort();
    for path in paths {
        if !path.to_string_lossy().ends_with(".input.txt") { continue; }
        let text = std::fs::read_to_string(&path).unwrap();
        let stack = sightline_grouping::parse_stacktrace(&text, None);
        println!("=== {} -> {:?}", path.file_name().unwrap().to_string_lossy(), stack.platform);
        for e in &stack.exceptions {
            println!("  [{}] {:?} ({} frames)", e.exception_type, e.message, e.frames.len());
            for f in &e.frames {
                println!("     {} {:?} | {:?} | {:?}:{:?}:{:?} ctx={:?}", if f.in_app {"APP"} else {"   "}, f.module, f.function, f.filename, f.lineno, f.colno, f.context_line);
            }
        }
        let top = &stack.exceptions[0];
        let fp = sightline_grouping::fingerprint(&sightline_grouping::GroupingInput { platform: stack.platform, exception_type: &top.exception_type, message: &top.message, frames: &top.frames, client_fingerprint: None });
        println!("  fp {} {:?} culprit={:?}", fp.variant, fp.contributing, sightline_grouping::culprit(stack.platform, &top.frames));
    }
}
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() { let p = e.unwrap().path(); if p.is_dir() { out.extend(walk(&p)); } else { out.push(p); } }
    out
}
