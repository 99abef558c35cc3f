//! Hand-written MessagePack encoder for Nexmark events, byte-identical to `rmp_serde` with
//! struct maps (a test checks this on every event type) but several times faster, since it
//! writes field names as constants and skips serde's dispatch. Used by the generator's hot
//! path; everything else goes through [`crate::encode::write_msgpack`].

use rmp::encode::{write_map_len, write_sint, write_str, write_uint};

use crate::GenError;

use super::model::EventRef;

fn err<E: std::fmt::Display>(e: E) -> GenError {
    GenError::Encode {
        format: "msgpack",
        message: e.to_string(),
    }
}

/// Appends `event` as `{"<kind>": {field: value, ...}}`.
pub fn write_event(event: EventRef<'_>, out: &mut Vec<u8>) -> Result<(), GenError> {
    write_map_len(out, 1).map_err(err)?;
    match event {
        EventRef::Person(p) => {
            write_str(out, "person").map_err(err)?;
            write_map_len(out, 8).map_err(err)?;
            uint(out, "id", p.id)?;
            text(out, "name", &p.name)?;
            text(out, "email_address", &p.email_address)?;
            text(out, "credit_card", &p.credit_card)?;
            text(out, "city", &p.city)?;
            text(out, "state", &p.state)?;
            sint(out, "date_time", p.date_time)?;
            text(out, "extra", &p.extra)
        }
        EventRef::Auction(a) => {
            write_str(out, "auction").map_err(err)?;
            write_map_len(out, 10).map_err(err)?;
            uint(out, "id", a.id)?;
            text(out, "item_name", &a.item_name)?;
            text(out, "description", &a.description)?;
            uint(out, "initial_bid", a.initial_bid)?;
            uint(out, "reserve", a.reserve)?;
            sint(out, "date_time", a.date_time)?;
            sint(out, "expires", a.expires)?;
            uint(out, "seller", a.seller)?;
            uint(out, "category", a.category)?;
            text(out, "extra", &a.extra)
        }
        EventRef::Bid(b) => {
            write_str(out, "bid").map_err(err)?;
            write_map_len(out, 7).map_err(err)?;
            uint(out, "auction", b.auction)?;
            uint(out, "bidder", b.bidder)?;
            uint(out, "price", b.price)?;
            text(out, "channel", &b.channel)?;
            text(out, "url", &b.url)?;
            sint(out, "date_time", b.date_time)?;
            text(out, "extra", &b.extra)
        }
    }
}

#[inline]
fn uint(out: &mut Vec<u8>, name: &str, v: u64) -> Result<(), GenError> {
    write_str(out, name).map_err(err)?;
    write_uint(out, v).map_err(err).map(|_| ())
}

#[inline]
fn sint(out: &mut Vec<u8>, name: &str, v: i64) -> Result<(), GenError> {
    write_str(out, name).map_err(err)?;
    write_sint(out, v).map_err(err).map(|_| ())
}

#[inline]
fn text(out: &mut Vec<u8>, name: &str, v: &str) -> Result<(), GenError> {
    write_str(out, name).map_err(err)?;
    write_str(out, v).map_err(err)
}
