//! What Django's encoding and signing at rest cost per request, against our own codec, for
//! the benchmarks' five-key session: `cargo bench -p session-django --bench codec`.
//!
//! A request that changes its session decodes once (load) and encodes once (save). Each
//! figure is the median of 7 rounds of 20,000 round trips, in µs per round trip.

use std::hint::black_box;
use std::time::Instant;

use session_core::CookieSealer;
use session_core::Expiry;
use session_core::codec::{Codec, Envelope};
use session_django::signing::{Keys, Signer};
use session_django::{DjangoCodec, EncryptedCookies, SignedCookies};
use session_testkit::fixtures::five_key_entries;

const ROUNDS: usize = 7;
const ITERATIONS: u32 = 20_000;

fn median_micros(mut round_trip: impl FnMut()) -> f64 {
    let mut rounds: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..ITERATIONS {
                round_trip();
            }
            start.elapsed().as_secs_f64() * 1e6 / f64::from(ITERATIONS)
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[ROUNDS / 2]
}

fn main() {
    let entries = five_key_entries();
    let keys = Keys::new("a-secret-key-of-django-length-0123456789abcdefghijklmnop");
    let envelope = Envelope;
    let django = DjangoCodec::new(keys.clone());
    let signer = Signer::new(keys, session_django::AT_REST_SALT);
    let id = session_core::SessionKey::generate().record_id();

    let ours = median_micros(|| {
        let payload = envelope.encode(black_box(&entries), Expiry::Default);
        black_box(envelope.decode(&payload).is_ok());
    });
    let django_codec = median_micros(|| {
        let payload = django.encode(black_box(&entries), Expiry::Default);
        black_box(django.decode(&payload).is_ok());
    });
    let signed = median_micros(|| {
        let payload = envelope.encode(black_box(&entries), Expiry::Default);
        let signature = signer.signature(&format!("{id}:{payload}"));
        let stored = format!("{payload}:{signature}");
        let (payload, signature) = stored.rsplit_once(':').unwrap_or_default();
        black_box(signer.verify(&format!("{id}:{payload}"), signature));
        black_box(envelope.decode(payload).is_ok());
    });
    let age = session_core::time::Duration::weeks(2);
    let signed_cookies = SignedCookies::new(Keys::new("a-secret-key-of-django-length"), age);
    let encrypted_cookies = EncryptedCookies::new(Keys::new("a-secret-key-of-django-length"), age);
    let signed_cookie = median_micros(|| {
        let value = signed_cookies.seal(black_box(&entries), Expiry::Default);
        black_box(signed_cookies.open(&value).is_ok());
    });
    let encrypted_cookie = median_micros(|| {
        let value = encrypted_cookies.seal(black_box(&entries), Expiry::Default);
        black_box(encrypted_cookies.open(&value).is_ok());
    });
    let payload = envelope.encode(&entries, Expiry::Default);
    let django_payload = django.encode(&entries, Expiry::Default);
    println!("five-key session, encode + decode per request (µs, median of {ROUNDS}):");
    println!(
        "RESULT envelope          {ours:7.2} µs  payload {} B",
        payload.len()
    );
    println!(
        "RESULT django codec      {django_codec:7.2} µs  payload {} B  (+{:.2} µs)",
        django_payload.len(),
        django_codec - ours
    );
    println!(
        "RESULT envelope signed   {signed:7.2} µs  payload {} B  (+{:.2} µs)",
        payload.len() + 44,
        signed - ours
    );
    let signed_value = signed_cookies.seal(&entries, Expiry::Default);
    let encrypted_value = encrypted_cookies.seal(&entries, Expiry::Default);
    println!(
        "RESULT signed cookie     {signed_cookie:7.2} µs  cookie {} B (sign + verify)",
        signed_value.len()
    );
    println!(
        "RESULT encrypted cookie  {encrypted_cookie:7.2} µs  cookie {} B (encrypt + decrypt)",
        encrypted_value.len()
    );
}
