//! The console's two languages. Every text a page shows is a [`T`], so a page cannot show a
//! text that has no translation; values (names, numbers, reasons) are shown as recorded.

use axum::http::{header, HeaderMap};

use super::session::cookie;

/// The cookie the language switch sets.
pub const LANG_COOKIE: &str = "disburse_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    ZhCn,
}

impl Lang {
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }

    pub fn parse(tag: &str) -> Option<Lang> {
        let tag = tag.trim().to_ascii_lowercase();
        if tag == "en" || tag.starts_with("en-") {
            Some(Lang::En)
        } else if tag == "zh" || tag.starts_with("zh-") {
            Some(Lang::ZhCn)
        } else {
            None
        }
    }

    /// The switch's cookie first, then the browser's `Accept-Language` by its q-values, then English.
    pub fn of(headers: &HeaderMap) -> Lang {
        if let Some(l) = cookie(headers, LANG_COOKIE).and_then(|v| Lang::parse(&v)) {
            return l;
        }
        let accept = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mut best: Option<(u32, Lang)> = None;
        for part in accept.split(',') {
            let mut pieces = part.split(';');
            let Some(lang) = pieces.next().and_then(Lang::parse) else {
                continue;
            };
            // q in thousandths: no float.
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .map(q_thousandths)
                .unwrap_or(1000);
            if q > 0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l).unwrap_or(Lang::En)
    }
}

/// "0.8" → 800, "1" → 1000; anything unreadable → 0 (ignored).
fn q_thousandths(q: &str) -> u32 {
    let (int, frac) = q.trim().split_once('.').unwrap_or((q.trim(), ""));
    let int: u32 = match int {
        "0" => 0,
        "1" => 1000,
        _ => return 0,
    };
    let digits: String = frac.chars().take(3).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return 0;
    }
    let frac = format!("{digits:0<3}").parse::<u32>().unwrap_or(0);
    (int + frac).min(1000)
}

/// Every text of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum T {
    Console,
    SignIn,
    SignOut,
    Name,
    Password,
    WrongPassword,
    Exceptions,
    Orders,
    Corrections,
    SignedInAs,
    Kind,
    Merchant,
    AnyKind,
    Filter,
    Age,
    Hours,
    Amount,
    Order,
    Payout,
    Reason,
    Needs,
    Source,
    Action,
    ProposeCorrection,
    Previous,
    Next,
    PageOf,
    NoExceptions,
    Search,
    SearchHint,
    NothingFound,
    Payouts,
    State,
    Channel,
    Paid,
    Account,
    BankReference,
    Timeline,
    When,
    Who,
    What,
    Details,
    Journals,
    AuditEvents,
    Messages,
    WaitingForMe,
    ProposedByMe,
    AllProposed,
    Propose,
    Evidence,
    PaidAmount,
    ReasonCode,
    ValueDate,
    Approve,
    Reject,
    RejectReason,
    Status,
    ProposedBy,
    Decided,
    Forbidden,
    NotFound,
    Refused,
    Back,
    MayNotPropose,
    MayNotApprove,
    OwnProposal,
    Proposed,
    Approved,
    Rejected,
    KindConfirmSucceeded,
    KindConfirmFailed,
    KindAmendPaidAmount,
    KindRecordReturn,
    KindCancelOrder,
    NoneYet,
    CsrfRefused,
}

/// The text in a language.
pub fn tr(lang: Lang, t: T) -> &'static str {
    let (en, zh) = match t {
        T::Console => ("Disburse console", "Disburse 操作台"),
        T::SignIn => ("Sign in", "登录"),
        T::SignOut => ("Sign out", "退出"),
        T::Name => ("Name", "用户名"),
        T::Password => ("Password", "密码"),
        T::WrongPassword => ("Unknown name or wrong password.", "用户名或密码错误。"),
        T::Exceptions => ("Exceptions", "异常队列"),
        T::Orders => ("Orders", "订单"),
        T::Corrections => ("Corrections", "更正"),
        T::SignedInAs => ("Signed in as", "当前用户"),
        T::Kind => ("Kind", "类型"),
        T::Merchant => ("Merchant", "商户"),
        T::AnyKind => ("any kind", "全部类型"),
        T::Filter => ("Filter", "筛选"),
        T::Age => ("Age", "时长"),
        T::Hours => ("h", "小时"),
        T::Amount => ("Amount", "金额"),
        T::Order => ("Order", "订单"),
        T::Payout => ("Payout", "付款"),
        T::Reason => ("Reason", "原因"),
        T::Needs => ("What it needs", "需要的处理"),
        T::Source => ("Source", "来源"),
        T::Action => ("Action", "操作"),
        T::ProposeCorrection => ("Propose a correction", "提出更正"),
        T::Previous => ("Previous", "上一页"),
        T::Next => ("Next", "下一页"),
        T::PageOf => ("Page", "页"),
        T::NoExceptions => ("Nothing waits for a person.", "没有待处理的异常。"),
        T::Search => ("Search", "搜索"),
        T::SearchHint => ("Order number or payout number (PO…)", "订单号或付款号（PO…）"),
        T::NothingFound => ("Nothing found.", "未找到。"),
        T::Payouts => ("Payouts", "付款"),
        T::State => ("State", "状态"),
        T::Channel => ("Channel", "渠道"),
        T::Paid => ("Paid", "已付金额"),
        T::Account => ("Account", "账户"),
        T::BankReference => ("Bank reference", "银行参考号"),
        T::Timeline => ("Timeline", "时间线"),
        T::When => ("When", "时间"),
        T::Who => ("Who", "操作者"),
        T::What => ("What", "事件"),
        T::Details => ("Details", "详情"),
        T::Journals => ("Journal", "分录"),
        T::AuditEvents => ("Audit", "审计"),
        T::Messages => ("Message", "消息"),
        T::WaitingForMe => ("Waiting for my approval", "等待我审批"),
        T::ProposedByMe => ("Proposed by me", "我提出的"),
        T::AllProposed => ("All corrections", "全部更正"),
        T::Propose => ("Propose", "提交"),
        T::Evidence => ("Evidence", "证据"),
        T::PaidAmount => ("Amount the bank paid", "银行实付金额"),
        T::ReasonCode => ("Reason code", "原因代码"),
        T::ValueDate => ("Value date (YYYY-MM-DD)", "起息日（YYYY-MM-DD）"),
        T::Approve => ("Approve", "批准"),
        T::Reject => ("Reject", "驳回"),
        T::RejectReason => ("Why rejected", "驳回原因"),
        T::Status => ("Status", "状态"),
        T::ProposedBy => ("Proposed by", "提出人"),
        T::Decided => ("Decided", "审批"),
        T::Forbidden => ("Not allowed", "无权操作"),
        T::NotFound => ("Not found", "未找到"),
        T::Refused => ("Refused", "被拒绝"),
        T::Back => ("Back", "返回"),
        T::MayNotPropose => (
            "Your role may not propose corrections.",
            "您的角色不能提出更正。",
        ),
        T::MayNotApprove => (
            "Your role may not approve or reject corrections.",
            "您的角色不能审批更正。",
        ),
        T::OwnProposal => (
            "You proposed this correction; another person must decide it.",
            "这是您提出的更正，须由他人审批。",
        ),
        T::Proposed => ("Correction proposed.", "更正已提交。"),
        T::Approved => ("Correction approved and applied.", "更正已批准并生效。"),
        T::Rejected => ("Correction rejected.", "更正已驳回。"),
        T::KindConfirmSucceeded => ("The bank did pay", "银行实际已付"),
        T::KindConfirmFailed => ("The bank did not pay", "银行实际未付"),
        T::KindAmendPaidAmount => ("The bank paid another amount", "银行实付金额不同"),
        T::KindRecordReturn => ("The money came back", "款项已退回"),
        T::KindCancelOrder => ("Cancel the order", "取消订单"),
        T::NoneYet => ("None.", "无。"),
        T::CsrfRefused => (
            "This form is out of date or did not come from this console. Reload the page and try again.",
            "表单已过期或并非来自本操作台，请刷新页面后重试。",
        ),
    };
    match lang {
        Lang::En => en,
        Lang::ZhCn => zh,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(accept: &str) -> Lang {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_LANGUAGE, accept.parse().unwrap());
        Lang::of(&h)
    }

    #[test]
    fn accept_language_is_read_by_q_value() {
        assert_eq!(with("zh-CN,zh;q=0.9,en;q=0.8"), Lang::ZhCn);
        assert_eq!(with("en-US,en;q=0.9"), Lang::En);
        assert_eq!(with("fr-FR, en;q=0.5, zh;q=0.7"), Lang::ZhCn);
        assert_eq!(with("fr-FR"), Lang::En);
        assert_eq!(with("zh;q=0"), Lang::En);
        assert_eq!(Lang::of(&HeaderMap::new()), Lang::En);
    }

    #[test]
    fn the_switch_wins_over_the_browser() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_LANGUAGE, "en".parse().unwrap());
        h.insert(header::COOKIE, "disburse_lang=zh-CN".parse().unwrap());
        assert_eq!(Lang::of(&h), Lang::ZhCn);
    }
}
