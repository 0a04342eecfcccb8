//! `pos update`: signed A/B system updates through RAUC (stub; being written).

use clap::Subcommand;

use crate::context::Context;

#[derive(Debug, Subcommand)]
pub enum UpdateCommand {}

pub fn run(_ctx: &Context, command: UpdateCommand) -> anyhow::Result<()> {
    match command {}
}
