//! Macros shared by every layer; declared first in the crate, so every module may use them.

/// Declares an error enum with a `Display` text per variant, smoltcp-style.
macro_rules! error_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $( $(#[$vmeta])* $variant, )* }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(match self { $( $name::$variant => $text, )* })
            }
        }

        impl core::error::Error for $name {}
    };
}
