//! Integration tests of every renderer against one realistic fixture.

mod fixture;
mod gate;
mod html;
mod junit;
mod markdown;
mod model;
mod terminal;
mod tsv;
