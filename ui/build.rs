//! Compiles the `.slint` screens; glyphs are embedded for the software renderer so the
//! appliance and headless tests need no system fonts at run time, and the gettext catalogues
//! under `translations/` are bundled so no `.mo` files are needed either.

fn main() {
    // Glyphs are pre-rendered at the sizes found as literals; the type scale lives in the
    // `Theme` global, so its sizes (theme.slint) are listed here. Keep the two in step.
    std::env::set_var("SLINT_FONT_SIZES", "16,20,28,40,64");
    println!("cargo:rerun-if-changed=ui");
    println!("cargo:rerun-if-changed=translations");
    let config = slint_build::CompilerConfiguration::new()
        .embed_resources(slint_build::EmbedResourcesKind::EmbedForSoftwareRenderer)
        .with_bundled_translations("translations")
        // One catalogue entry per sentence, whichever screen shows it.
        .with_default_translation_context(slint_build::DefaultTranslationContext::None);
    if let Err(e) = slint_build::compile_with_config("ui/app.slint", config) {
        // A build script reports by panicking; the message is the Slint compiler's.
        panic!("slint compile failed: {e}");
    }
}
