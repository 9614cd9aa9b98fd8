//! Integration tests of every renderer against one realistic fixture.

mod fixture;
mod html;
mod junit;
mod markdown;
mod model;
mod terminal;
mod tsv;
