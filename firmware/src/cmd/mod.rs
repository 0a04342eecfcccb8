pub mod audit;
pub mod demo;
pub mod init;
