//! The entity types the guard finds, the opt-in national-id packs, and the context words that
//! raise a weak match's score.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

macro_rules! entities {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, pack: $pack:expr, context: [$($ctx:literal),* $(,)?] ;)*) => {
        /// An entity type. Names are Presidio's where Presidio has one, so policies and evaluation
        /// tooling transfer.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Entity {
            $( $(#[$doc])* $variant, )*
        }

        impl Entity {
            /// Every entity type, built-in and pack.
            pub const ALL: &'static [Entity] = &[$(Entity::$variant),*];

            /// The name (`EMAIL_ADDRESS`).
            pub fn as_str(self) -> &'static str {
                match self { $(Entity::$variant => $name,)* }
            }

            /// The national-id pack the type belongs to (`None`: built in, always scanned).
            pub fn pack(self) -> Option<Pack> {
                match self { $(Entity::$variant => $pack,)* }
            }

            /// Words that, a few words before a match, raise its score (lower case).
            pub fn context(self) -> &'static [&'static str] {
                match self { $(Entity::$variant => &[$($ctx),*],)* }
            }
        }

        impl FromStr for Entity {
            type Err = UnknownEntity;
            fn from_str(s: &str) -> Result<Entity, UnknownEntity> {
                match s {
                    $($name => Ok(Entity::$variant),)*
                    _ => Err(UnknownEntity(s.to_string())),
                }
            }
        }
    };
}

entities! {
    /// An e-mail address whose domain ends in a public top-level domain.
    EmailAddress = "EMAIL_ADDRESS", pack: None, context: ["email", "e-mail", "mail"];
    /// A payment card number (issuer range and Luhn).
    CreditCard = "CREDIT_CARD", pack: None, context: ["card", "credit", "debit", "visa", "mastercard", "amex", "cc", "payment", "pan"];
    /// An IBAN (country length and mod 97).
    IbanCode = "IBAN_CODE", pack: None, context: ["iban", "bank", "account", "transfer"];
    /// A US social security number.
    UsSsn = "US_SSN", pack: None, context: ["ssn", "social security", "social sec", "ss#", "ss #", "tax id"];
    /// A phone number: E.164 with `+`, or a national format of a configured region.
    PhoneNumber = "PHONE_NUMBER", pack: None, context: ["phone", "tel", "telephone", "mobile", "cell", "call", "fax", "contact", "whatsapp", "sms", "text me", "reach", "ring", "dial", "landline", "mob", "ph.", "ph:", "telefon", "téléphone", "portable", "handy", "número", "telefono", "teléfono", "tlf", "móvil", "movil", "cellulare", "telefoon", "mobiel", "mobile number", "tel.", "tel:"];
    /// An IPv4 or IPv6 address.
    IpAddress = "IP_ADDRESS", pack: None, context: ["ip", "address", "host", "server", "client", "from", "dns", "gateway", "nameserver", "addr", "inet", "ping"];
    /// A MAC address.
    MacAddress = "MAC_ADDRESS", pack: None, context: ["mac", "hardware", "ethernet", "wifi", "device"];
    /// A URL that carries a user name and password.
    UrlWithCredentials = "URL_WITH_CREDENTIALS", pack: None, context: [];
    /// A Bitcoin (Base58Check, Bech32/Bech32m) or Ethereum address.
    CryptoWallet = "CRYPTO_WALLET", pack: None, context: ["wallet", "btc", "bitcoin", "eth", "ethereum", "address", "send", "crypto"];
    /// A date of birth: a date with a birth word before it.
    DateOfBirth = "DATE_OF_BIRTH", pack: None, context: ["born", "dob", "d.o.b", "date of birth", "birth date", "birthdate", "birthday", "geboren", "geburtsdatum", "geb.", "né le", "née le", "date de naissance", "fecha de nacimiento", "nacimiento", "data di nascita", "nascita", "nato il", "nata il", "data de nascimento", "nascimento", "nascido em", "nascida em", "geboortedatum", "födelsedatum", "fødselsdato", "syntymäaika", "data urodzenia", "urodzony", "urodzona"];
    /// UK NHS number (mod 11).
    UkNhs = "UK_NHS", pack: Some(Pack::Uk), context: ["nhs", "health", "patient"];
    /// UK National Insurance number.
    UkNino = "UK_NINO", pack: Some(Pack::Uk), context: ["national insurance", "nino", "ni number", "ni no"];
    /// Canadian social insurance number (Luhn).
    CaSin = "CA_SIN", pack: Some(Pack::Ca), context: ["sin", "social insurance", "nas"];
    /// Spanish DNI/NIF (mod 23 letter).
    EsNif = "ES_NIF", pack: Some(Pack::Es), context: ["dni", "nif", "documento"];
    /// Spanish NIE (mod 23 letter).
    EsNie = "ES_NIE", pack: Some(Pack::Es), context: ["nie", "extranjero"];
    /// Italian codice fiscale (check character).
    ItFiscalCode = "IT_FISCAL_CODE", pack: Some(Pack::It), context: ["codice fiscale", "fiscal code", "cf"];
    /// Polish PESEL (checksum and birth date).
    PlPesel = "PL_PESEL", pack: Some(Pack::Pl), context: ["pesel"];
    /// German tax identification number (ISO 7064).
    DeTaxId = "DE_TAX_ID", pack: Some(Pack::De), context: ["steuer", "steuerid", "steuer-id", "idnr", "tax id", "identifikationsnummer"];
    /// Swedish personnummer (date and Luhn).
    SePersonnummer = "SE_PERSONNUMMER", pack: Some(Pack::Se), context: ["personnummer", "personal number"];
    /// Indian Aadhaar (Verhoeff).
    InAadhaar = "IN_AADHAAR", pack: Some(Pack::In), context: ["aadhaar", "aadhar", "uidai", "uid"];
    /// Australian tax file number (mod 11).
    AuTfn = "AU_TFN", pack: Some(Pack::Au), context: ["tfn", "tax file"];
    /// Australian business number (mod 89).
    AuAbn = "AU_ABN", pack: Some(Pack::Au), context: ["abn", "business number"];
    /// US individual taxpayer identification number.
    UsItin = "US_ITIN", pack: Some(Pack::Us), context: ["itin", "taxpayer"];
    /// US national provider identifier (Luhn with prefix 80840).
    UsNpi = "US_NPI", pack: Some(Pack::Us), context: ["npi", "provider", "prescriber", "physician"];
    /// ABA routing transit number (weights 3-7-1).
    AbaRoutingNumber = "ABA_ROUTING_NUMBER", pack: Some(Pack::Us), context: ["routing", "aba", "rtn", "transit", "bank"];
    /// AWS access key id (`AKIA…`) or secret access key after its keyword.
    SecretAwsKey = "SECRET_AWS_KEY", pack: None, context: ["aws", "secret", "secret access key", "secretaccesskey"];
    /// GitHub token (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`).
    SecretGithubToken = "SECRET_GITHUB_TOKEN", pack: None, context: [];
    /// Slack token (`xox…-`) or webhook URL.
    SecretSlackToken = "SECRET_SLACK_TOKEN", pack: None, context: [];
    /// Stripe secret or restricted key.
    SecretStripeKey = "SECRET_STRIPE_KEY", pack: None, context: [];
    /// OpenAI API key (`sk-…`).
    SecretOpenaiKey = "SECRET_OPENAI_KEY", pack: None, context: [];
    /// Anthropic API key (`sk-ant-…`).
    SecretAnthropicKey = "SECRET_ANTHROPIC_KEY", pack: None, context: [];
    /// Google API key (`AIza…`).
    SecretGoogleApiKey = "SECRET_GOOGLE_API_KEY", pack: None, context: [];
    /// A PEM private key block.
    SecretPrivateKey = "SECRET_PRIVATE_KEY", pack: None, context: [];
    /// A JSON Web Token whose header decodes.
    SecretJwt = "SECRET_JWT", pack: None, context: [];
    /// A database or broker connection string with a password.
    SecretConnectionString = "SECRET_CONNECTION_STRING", pack: None, context: [];
    /// Another credential: a known token prefix, or a high-entropy value after a secret keyword.
    SecretGeneric = "SECRET_GENERIC", pack: None, context: [];
    /// A term of the operator's dictionary.
    CustomTerm = "CUSTOM_TERM", pack: None, context: [];
    /// A term the operator denies.
    DeniedTerm = "DENIED_TERM", pack: None, context: [];
    /// Prompt-injection signs: hidden characters, override phrases, injected role markers,
    /// encoded instructions.
    PromptInjection = "PROMPT_INJECTION", pack: None, context: [];
}

impl Entity {
    /// Whether the type is a credential (`SECRET_*`).
    pub fn is_secret(self) -> bool {
        self.as_str().starts_with("SECRET_")
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Entity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Entity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Entity, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A name that is no entity type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown entity type `{0}` (known: EMAIL_ADDRESS, CREDIT_CARD, … see `tollgate guard entities`)"
)]
pub struct UnknownEntity(pub String);

/// An opt-in pack of national identifiers, by country.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pack {
    /// UK NHS number, National Insurance number.
    Uk,
    /// Canadian SIN.
    Ca,
    /// Spanish NIF and NIE.
    Es,
    /// Italian codice fiscale.
    It,
    /// Polish PESEL.
    Pl,
    /// German tax id.
    De,
    /// Swedish personnummer.
    Se,
    /// Indian Aadhaar.
    In,
    /// Australian TFN and ABN.
    Au,
    /// US ITIN, NPI, ABA routing number.
    Us,
}

impl Pack {
    /// Every pack.
    pub const ALL: &'static [Pack] = &[
        Pack::Uk,
        Pack::Ca,
        Pack::Es,
        Pack::It,
        Pack::Pl,
        Pack::De,
        Pack::Se,
        Pack::In,
        Pack::Au,
        Pack::Us,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &e in Entity::ALL {
            assert_eq!(e.as_str().parse::<Entity>(), Ok(e));
        }
        assert!("EMAIL".parse::<Entity>().is_err());
    }
}
