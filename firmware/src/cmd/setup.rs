//! `pos setup`: the appliance's first boot (stub; being written).

use clap::Args;

use crate::context::Context;

#[derive(Debug, Args)]
pub struct SetupArgs {}

pub fn run(_ctx: &Context, _args: SetupArgs) -> anyhow::Result<()> {
    anyhow::bail!("pos setup is not built yet")
}
