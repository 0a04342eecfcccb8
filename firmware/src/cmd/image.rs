//! `pos image`: flash appliance images (stub; being written).

use clap::Subcommand;

use crate::context::Context;

#[derive(Debug, Subcommand)]
pub enum ImageCommand {}

pub fn run(_ctx: &Context, command: ImageCommand) -> anyhow::Result<()> {
    match command {}
}
