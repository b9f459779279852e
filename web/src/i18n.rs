//! The page's words in Russian (default) and English, in one table.
//!
//! Every text is a [`Key`]; the `texts!` table gives each key its Russian and English form
//! side by side, so a key cannot exist in one language only, and a test checks that both are
//! non-empty and carry the same `{placeholders}`.

use serde::{Deserialize, Serialize};

/// A language of the page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Russian, the default.
    #[default]
    Ru,
    /// English.
    En,
}

impl Lang {
    /// The other language (what `lang-switch` switches to).
    pub fn toggled(self) -> Lang {
        match self {
            Lang::Ru => Lang::En,
            Lang::En => Lang::Ru,
        }
    }

    /// The `lang` attribute value.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ru => "ru",
            Lang::En => "en",
        }
    }

    /// Reads a stored code; anything unknown is Russian.
    pub fn from_code(code: &str) -> Lang {
        if code == "en" {
            Lang::En
        } else {
            Lang::Ru
        }
    }
}

macro_rules! texts {
    ($($key:ident => $ru:expr, $en:expr;)*) => {
        /// One text of the page.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Key { $($key,)* }

        impl Key {
            /// Every key, in table order.
            pub const ALL: &'static [Key] = &[$(Key::$key,)*];

            /// The text in `lang`.
            pub fn text(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $((Key::$key, Lang::Ru) => $ru, (Key::$key, Lang::En) => $en,)*
                }
            }
        }
    };
}

texts! {
    AppTitle => "Касса", "Till";
    TabRefusedTitle => "Касса уже открыта в другой вкладке", "The till is already open in another tab";
    TabRefusedText => "Продавать можно только в одной вкладке: так ни один чек не потеряется и не будет пробит дважды. Закройте эту вкладку и вернитесь в ту, где касса уже открыта.",
        "Only one tab may sell at a time, so that no receipt is lost or made twice. Close this tab and go back to the one where the till is open.";
    StorageRefusedTitle => "Браузер не разрешил постоянное хранилище", "The browser refused persistent storage";
    StorageRefusedText => "Без постоянного хранилища браузер может сам удалить ещё не переданные чеки, поэтому смену открыть нельзя. Разрешите сайту хранить данные (например, добавьте страницу в закладки) и повторите.",
        "Without persistent storage the browser may delete receipts that have not reached the till yet, so no shift can be opened. Allow this site to store data (for example, bookmark the page) and retry.";
    Retry => "Повторить", "Retry";
    Loading => "Загрузка…", "Loading…";
    LoginTitle => "Вход кассира", "Cashier login";
    PinLabel => "PIN-код", "PIN";
    LoginSubmit => "Войти", "Log in";
    LoginWrongPin => "Неверный PIN-код", "Wrong PIN";
    LoginTooMany => "Слишком много попыток. Повторите через {n} с", "Too many attempts. Try again in {n} s";
    LoginExpired => "Вход истёк: войдите снова. Непереданные чеки сохранены.", "Your login expired: log in again. Unsent receipts are kept.";
    TillUnreachable => "Нет связи с кассовым сервером", "The till server does not answer";
    NeedsTill => "Для этого нужна связь с кассовым сервером", "This needs the till server";
    ServerRefused => "Кассовый сервер отказал: {reason}", "The till server refused: {reason}";
    OpenSessionTitle => "Открытие смены", "Open a shift";
    OpeningCash => "Наличные в кассе на начало смены, ₽", "Cash in the drawer at opening, ₽";
    SessionOpen => "Открыть смену", "Open shift";
    WaitingForSession => "Смена открыта, загружаем её с кассового сервера…", "The shift is open; loading it from the till server…";
    ScanPlaceholder => "Штрихкод, артикул или название", "Barcode, SKU or name";
    NotFound => "Товар не найден: {q}", "No product found: {q}";
    CatalogueEmpty => "Каталог ещё не загружен с кассового сервера", "The catalogue has not arrived from the till server yet";
    CartEmpty => "Чек пуст: отсканируйте товар", "The receipt is empty: scan a product";
    ColName => "Товар", "Product";
    ColQty => "Кол-во", "Qty";
    ColPrice => "Цена", "Price";
    ColDiscount => "Скидка", "Discount";
    ColSum => "Сумма", "Sum";
    Remove => "Удалить", "Remove";
    LineDiscount => "Скидка на строку, ₽", "Line discount, ₽";
    ReceiptDiscount => "Скидка на чек, ₽", "Receipt discount, ₽";
    Subtotal => "Без скидок", "Before discounts";
    DiscountTotal => "Скидка", "Discount";
    Total => "Итого", "Total";
    BuyerContact => "Телефон или e-mail покупателя (электронный чек)", "Buyer phone or e-mail (electronic receipt)";
    BuyerContactInvalid => "Телефон или e-mail указан неверно", "The phone or e-mail is not valid";
    PayCash => "Наличные (F2)", "Cash (F2)";
    PayCard => "Карта (F3)", "Card (F3)";
    PaySplit => "Наличные + карта", "Cash + card";
    CashTendered => "Получено наличными, ₽", "Cash tendered, ₽";
    CardAmount => "Оплата картой, ₽", "Paid by card, ₽";
    CashPart => "Наличными", "In cash";
    CardPart => "Картой", "By card";
    Change => "Сдача", "Change";
    PayConfirm => "Провести (Enter)", "Confirm (Enter)";
    Cancel => "Отмена (Esc)", "Cancel (Esc)";
    TenderedTooLow => "Получено меньше, чем нужно оплатить наличными", "Less cash tendered than the cash part";
    CardTooLarge => "Сумма по карте больше итога", "The card amount exceeds the total";
    SplitNeedsCard => "Укажите сумму по карте меньше итога", "Enter a card amount below the total";
    MoneyInvalid => "Сумма указана неверно", "The amount is not valid";
    DiscountNeedsApproval => "Скидка больше 10 %: нужно подтверждение управляющего", "A discount above 10 % needs a manager's approval";
    DiscountTooLarge => "Скидка больше 50 % чека недопустима", "A discount above 50 % of the receipt is not allowed";
    DiscountAboveLine => "Скидка больше суммы", "The discount exceeds the amount";
    ManagerSecret => "PIN управляющего", "Manager PIN";
    Approve => "Подтвердить скидку", "Approve discount";
    ApprovedBy => "Скидку подтвердил(а): {name}", "Discount approved by {name}";
    ApprovalRefused => "Подтверждение не принято", "Approval refused";
    ApprovalCartChanged => "Чек изменился во время подтверждения: попросите менеджера подтвердить скидку снова",
        "The receipt changed during the approval: ask the manager to approve the discount again";
    ReceiptLabel => "Чек", "Receipt";
    StateSaved => "сохранён в браузере", "saved in the browser";
    StateSent => "передан на кассу", "sent to the till";
    StateFiscalised => "фискализирован", "fiscalised";
    StateAcknowledged => "подтверждён ОФД", "acknowledged by the OFD";
    NetworkLabel => "Касса", "Till";
    NetOnline => "в сети", "online";
    NetDegraded => "с ограничениями", "degraded";
    NetOffline => "нет связи", "offline";
    BufferLabel => "Буфер", "Buffer";
    BreakerLabel => "ОФД", "OFD";
    LastSyncLabel => "Синхр.", "Sync";
    Never => "никогда", "never";
    Ago => "{t} назад", "{t} ago";
    OldestLabel => "Старейший неподтв.", "Oldest unack.";
    ShiftLabel => "Смена", "Shift";
    OfLimit => "из 24 ч", "of 24 h";
    WaitingForTill => "Чеки ждут кассовый сервер: {n}", "Receipts are waiting for the till: {n}";
    SaleBlocked => "Продажи остановлены: буфер фискальных документов заполнен ({n} / {cap}). Дождитесь передачи чеков в ОФД.",
        "Sales are blocked: the fiscal buffer is full ({n} / {cap}). Wait until receipts reach the OFD.";
    ShiftExpiredBlocked => "Продажи остановлены: смена открыта {t}, больше 24 часов. Фискальный регистратор не примет чек до Z-отчёта: закройте смену и откройте новую.",
        "Sales are blocked: the shift has been open {t}, over 24 hours. The fiscal register takes no receipt until the Z report: close the shift and open a new one.";
    SaleInProgress => "Предыдущий чек ещё сохраняется, подождите", "The previous receipt is still being saved; please wait";
    CartChanged => "Чек изменился во время оплаты: проверьте сумму и проведите оплату снова", "The receipt changed during payment: check the total and confirm the payment again";
    SyncRefused => "Кассовый сервер не принимает данные этой страницы: {reason}. Чеки сохранены в браузере; сообщите в поддержку.",
        "The till server refuses this page's data: {reason}. Receipts are kept in the browser; tell support.";
    RefundStart => "Возврат", "Refund";
    RefundPick => "Выберите чек этой смены для возврата", "Pick a receipt of this shift to refund";
    RefundNone => "В этой смене нет продаж для возврата", "This shift has no sales to refund";
    RefundDone => "Возврат проведён", "Refund made";
    RefundPending => "Оригинал ещё не фискализирован: возврат будет проведён автоматически", "The original is not fiscalised yet: the refund will be made automatically";
    CashIn => "Внесение", "Cash in";
    CashOut => "Изъятие", "Cash out";
    Amount => "Сумма, ₽", "Amount, ₽";
    Reason => "Основание", "Reason";
    Done => "Готово", "Done";
    XReport => "X-отчёт", "X report";
    XReportPrinted => "X-отчёт напечатан", "X report printed";
    SessionClose => "Закрыть смену (Z)", "Close shift (Z)";
    CloseRefused => "Смену нельзя закрыть: чеки ещё не переданы на кассу ({n})", "The shift cannot be closed: receipts have not reached the till ({n})";
    CloseConfirm => "Закрыть смену и напечатать Z-отчёт?", "Close the shift and print the Z report?";
    ClosedTitle => "Смена закрыта (Z-отчёт)", "Shift closed (Z report)";
    ReceiptsCount => "Чеков", "Receipts";
    SalesTotal => "Продажи", "Sales";
    RefundsTotal => "Возвраты", "Refunds";
    NetTotal => "Выручка", "Net";
    PaidCash => "Наличными", "Cash";
    PaidCard => "Картой", "Card";
    CashInTotal => "Внесено", "Cash in";
    CashOutTotal => "Изъято", "Cash out";
    CashBalance => "Наличные в кассе", "Cash in the drawer";
    OpenNext => "Открыть новую смену", "Open a new shift";
    Logout => "Выйти", "Log out";
    LogoutRefused => "Выйти нельзя: чеки ещё не переданы на кассу ({n})", "You cannot log out: receipts have not reached the till ({n})";
    StorageFailed => "Не удалось записать в хранилище браузера: продажи остановлены. Перезагрузите страницу.", "Writing to the browser's storage failed: sales are stopped. Reload the page.";
    SaleFailed => "Чек не проведён: {reason}", "The receipt was not made: {reason}";
    TooManyLines => "В чеке не больше 500 строк", "A receipt holds at most 500 lines";
    BadQuantity => "Неверное количество", "The quantity is not valid";
    InvalidField => "неверное поле «{field}»", "invalid field `{field}`";
    NoOpenSession => "смена не открыта", "no shift is open";
    Cashier => "Кассир", "Cashier";
    LangSwitch => "English", "Русский";
    UnitSeconds => "с", "s";
    UnitMinutes => "мин", "min";
    UnitHours => "ч", "h";
    UnitDays => "д", "d";
}

/// `text` with every `{name}` replaced by its value.
pub fn fill(text: &str, values: &[(&str, &str)]) -> String {
    let mut filled = text.to_owned();
    for (name, value) in values {
        filled = filled.replace(&format!("{{{name}}}"), value);
    }
    filled
}

/// The `{placeholders}` of a text, sorted.
#[cfg(test)]
fn placeholders(text: &str) -> Vec<String> {
    let mut found: Vec<String> = text
        .split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_owned()))
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_both_languages_with_the_same_placeholders() {
        for key in Key::ALL {
            let ru = key.text(Lang::Ru);
            let en = key.text(Lang::En);
            assert!(!ru.trim().is_empty(), "{key:?} has no Russian text");
            assert!(!en.trim().is_empty(), "{key:?} has no English text");
            assert_eq!(placeholders(ru), placeholders(en), "{key:?}");
        }
    }

    #[test]
    fn russian_texts_are_russian() {
        // Catches a pasted English text in the Russian column (units and short labels aside).
        let cyrillic = |text: &str| {
            text.chars()
                .any(|c| ('а'..='я').contains(&c.to_lowercase().next().unwrap_or(c)))
        };
        for key in Key::ALL {
            if matches!(key, Key::LangSwitch | Key::BreakerLabel) {
                continue;
            }
            assert!(cyrillic(key.text(Lang::Ru)), "{key:?}");
        }
    }

    #[test]
    fn fill_replaces_placeholders() {
        assert_eq!(
            fill("{n} / {cap}", &[("n", "3"), ("cap", "200")]),
            "3 / 200"
        );
        assert_eq!(fill("нет", &[("n", "3")]), "нет");
    }

    #[test]
    fn lang_codes_round_trip() {
        assert_eq!(Lang::from_code(Lang::En.code()), Lang::En);
        assert_eq!(Lang::from_code("xx"), Lang::Ru);
        assert_eq!(Lang::Ru.toggled(), Lang::En);
        assert_eq!(Lang::default(), Lang::Ru);
    }
}
