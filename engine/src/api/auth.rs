//! Bearer tokens: admin for anything that changes state, optional ingest
//! and read tokens. Tokens come from the live config (reloadable).

use axum::http::{HeaderMap, StatusCode, header};

use super::ApiError;
use crate::config::Auth;

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Ingest,
    Admin,
}

fn same(a: &[u8], b: &[u8]) -> bool {
    // Constant time in the contents, so a token cannot be guessed byte by
    // byte from response times.
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks the request's bearer token against what `access` needs.
pub fn check(auth: &Auth, headers: &HeaderMap, access: Access) -> Result<(), ApiError> {
    let needed: Vec<&str> = match access {
        Access::Admin => vec![&auth.admin_token],
        Access::Ingest => vec![&auth.ingest_token, &auth.admin_token],
        Access::Read => vec![&auth.read_token, &auth.admin_token],
    }
    .into_iter()
    .map(String::as_str)
    .collect();
    // The access level's own token unset: open (loopback-only unless an
    // admin token exists, which config validation enforces).
    let own = needed[0];
    if own.is_empty() {
        return Ok(());
    }
    let what = match access {
        Access::Admin => "the admin token",
        Access::Ingest => "the ingest or admin token",
        Access::Read => "the read or admin token",
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!("this request needs {what}: send `Authorization: Bearer <token>`"),
        )),
        Some(t)
            if needed
                .iter()
                .any(|n| !n.is_empty() && same(n.as_bytes(), t.as_bytes())) =>
        {
            Ok(())
        }
        Some(_) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("the token given is not {what}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        Auth {
            admin_token: "admin-token-0123456789".into(),
            ingest_token: "ingest-token-0123456789".into(),
            read_token: String::new(),
        }
    }

    fn with(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        h
    }

    #[test]
    fn admin_routes_need_the_admin_token() {
        let a = auth();
        assert_eq!(
            check(&a, &HeaderMap::new(), Access::Admin)
                .unwrap_err()
                .status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            check(&a, &with("ingest-token-0123456789"), Access::Admin)
                .unwrap_err()
                .status,
            StatusCode::FORBIDDEN
        );
        check(&a, &with("admin-token-0123456789"), Access::Admin).unwrap();
    }

    #[test]
    fn ingest_takes_ingest_or_admin_and_read_is_open_without_a_read_token() {
        let a = auth();
        check(&a, &with("ingest-token-0123456789"), Access::Ingest).unwrap();
        check(&a, &with("admin-token-0123456789"), Access::Ingest).unwrap();
        assert!(check(&a, &with("nope"), Access::Ingest).is_err());
        check(&a, &HeaderMap::new(), Access::Read).unwrap();
    }
}
