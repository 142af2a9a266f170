//! Compile-fail tests of `#[service]` and `#[derive(AsterType)]`: each case in `tests/ui/`
//! must fail with the readable error recorded in its `.stderr` file.
//!
//! The cases use `aster_macros` directly with local stand-in types (`CallContext`, `Status`,
//! ...): the macros check signatures syntactically and stop before generating code, so the
//! test projects need no runtime crates and build in seconds. Regenerate the `.stderr` files
//! with `TRYBUILD=overwrite cargo test -p aster-macros --test compile_fail`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
