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
    EvidenceFile,
    EnterNotice,
    Outcome,
    OutcomeRejected,
    OutcomeReturned,
    NotPaperChannel,
    NoticeUnchanged,
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
    MayNotWork,
    Work,
    ClaimedBy,
    Claim,
    Release,
    Comment,
    MarkHandled,
    HandledBy,
    Note,
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
    Overview,
    InTransit,
    InTransitHint,
    ExceptionsByKind,
    ImportLag,
    LastFile,
    HoursSince,
    AwaitingResult,
    OldestAwaiting,
    Never,
    BatchesToday,
    FilesToday,
    Batch,
    File,
    Count,
    Total,
    Written,
    NotWritten,
    Records,
    Applied,
    Unchanged,
    Currency,
    AgeUnder1h,
    Age1To24h,
    Age1To3d,
    AgeOver3d,
    Discrepancies,
    OpenOnly,
    ShowAll,
    Direction,
    Settled,
    History,
    Told,
    NoDiscrepancies,
    RefundReceived,
    RefundReference,
    ProposeWriteOff,
    ApproveWriteOff,
    TopUpNow,
    TopUpChannel,
    NetAgainstNext,
    AddToNext,
    WhyResolved,
    DiscrepancyResolved,
    MayNotResolve,
    MayNotApproveWriteOff,
    OwnWriteOff,
    WriteOffProposedBy,
    OwedToUs,
    OwedToMerchant,
    BatchesAndFiles,
    Batches,
    UploadResultFile,
    ChannelFromFile,
    Preview,
    Download,
    PrintSheet,
    NotASheet,
    MayNotHandleFiles,
    PreviewTitle,
    AlreadyImported,
    PreviewNothingApplied,
    StateChanges,
    Postings,
    ApplyFile,
    UploadGone,
    Imported,
    NoChannelNamed,
    Merchants,
    AccountStatus,
    BankAccountTitle,
    Balances,
    Holder,
    Iban,
    Country,
    BankCode,
    AccountNumber,
    Bic,
    FixAccount,
    FixAccountHint,
    AccountFixed,
    MayNotFixAccount,
    NoAccount,
    Version,
    Audit,
    Ledger,
    Actor,
    ActionPrefix,
    SubjectPrefix,
    From,
    To,
    ExportCsv,
    Verify,
    VerifyOk,
    VerifyFailed,
    TrialBalance,
    Debits,
    Credits,
    Net,
    Shown,
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
        T::MayNotWork => ("Viewers read the queue; claiming, commenting and marking handled need the operator role.", "查看者只能阅读队列；认领、评论和标记已处理需要操作员角色。"),
        T::Work => ("Work", "处理"),
        T::ClaimedBy => ("Claimed by", "认领人"),
        T::Claim => ("Claim", "认领"),
        T::Release => ("Release", "释放"),
        T::Comment => ("Comment", "评论"),
        T::MarkHandled => ("Mark handled", "标记已处理"),
        T::HandledBy => ("Handled by", "处理人"),
        T::Note => ("Note", "备注"),
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
        T::EvidenceFile => ("The bank's notice (file, kept by its SHA-256)", "银行通知（文件，按 SHA-256 保存）"),
        T::EnterNotice => ("Enter the bank's notice", "录入银行通知"),
        T::Outcome => ("What the bank says", "银行的结果"),
        T::OutcomeRejected => ("Failed (rejected, with a reason code)", "失败（拒绝，附原因代码）"),
        T::OutcomeReturned => ("Returned", "退回"),
        T::NotPaperChannel => ("Only payouts of a paper (manual) channel are entered by hand here; other channels' results come in their files", "此处只录入纸质（人工）渠道的付款结果；其他渠道的结果来自其文件"),
        T::NoticeUnchanged => ("Nothing changed", "没有变化"),
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
        T::Overview => ("Overview", "总览"),
        T::InTransit => ("Money in transit", "在途资金"),
        T::InTransitHint => ("Payouts made or sent whose result the bank has not given, by channel and age.", "已创建或已发送、银行尚未回复结果的付款，按渠道和时长。"),
        T::ExceptionsByKind => ("Exceptions by kind and age", "按类型和时长的异常"),
        T::ImportLag => ("Import lag per channel", "各渠道导入延迟"),
        T::LastFile => ("Last result file", "最近结果文件"),
        T::HoursSince => ("Hours since", "距今小时"),
        T::AwaitingResult => ("Sent, awaiting a result", "已发送，等待结果"),
        T::OldestAwaiting => ("Oldest waiting (h)", "最久等待（小时）"),
        T::Never => ("never", "从未"),
        T::BatchesToday => ("Today's batches", "今日批次"),
        T::FilesToday => ("Today's result files", "今日结果文件"),
        T::Batch => ("Batch", "批次"),
        T::File => ("File", "文件"),
        T::Count => ("Count", "笔数"),
        T::Total => ("Total", "合计"),
        T::Written => ("Written", "已写出"),
        T::NotWritten => ("not written", "未写出"),
        T::Records => ("Records", "记录"),
        T::Applied => ("Applied", "已应用"),
        T::Unchanged => ("Unchanged", "未变化"),
        T::Currency => ("Currency", "币种"),
        T::AgeUnder1h => ("< 1 h", "< 1 小时"),
        T::Age1To24h => ("1–24 h", "1–24 小时"),
        T::Age1To3d => ("1–3 days", "1–3 天"),
        T::AgeOver3d => ("> 3 days", "> 3 天"),
        T::Discrepancies => ("Discrepancies", "差额"),
        T::OpenOnly => ("Open only", "仅未结清"),
        T::ShowAll => ("All, settled too", "全部（含已结清）"),
        T::Direction => ("Direction", "方向"),
        T::Settled => ("Settled", "已结清"),
        T::History => ("History", "历史"),
        T::Told => ("What the merchant was told", "已通知商户的内容"),
        T::NoDiscrepancies => ("No discrepancies.", "没有差额。"),
        T::RefundReceived => ("Refund received", "已收到退款"),
        T::RefundReference => ("Reference of the merchant's refund", "商户退款参考号"),
        T::ProposeWriteOff => ("Propose a write-off", "提出核销"),
        T::ApproveWriteOff => ("Approve the write-off", "批准核销"),
        T::TopUpNow => ("Top up now", "立即补付"),
        T::TopUpChannel => ("Channel (blank: the original payout's)", "渠道（留空：原付款渠道）"),
        T::NetAgainstNext => ("Net against the next payouts", "从后续付款中抵扣"),
        T::AddToNext => ("Add to the next payout", "加入下一笔付款"),
        T::WhyResolved => ("Why", "原因"),
        T::DiscrepancyResolved => ("Discrepancy updated.", "差额已更新。"),
        T::MayNotResolve => ("Your role may not settle discrepancies.", "您的角色不能处理差额。"),
        T::MayNotApproveWriteOff => ("Your role may not approve write-offs.", "您的角色不能批准核销。"),
        T::OwnWriteOff => ("You proposed this write-off; another person must approve it.", "这是您提出的核销，须由他人批准。"),
        T::WriteOffProposedBy => ("Write-off proposed by", "核销提出人"),
        T::OwedToUs => ("the merchant owes us", "商户欠我方"),
        T::OwedToMerchant => ("we owe the merchant", "我方欠商户"),
        T::BatchesAndFiles => ("Batches and files", "批次与文件"),
        T::Batches => ("Batches", "批次"),
        T::UploadResultFile => ("Upload a result file", "上传结果文件"),
        T::ChannelFromFile => ("(from the file; needed for CSV)", "（按文件识别；CSV 必选）"),
        T::Preview => ("Preview", "预览"),
        T::Download => ("Download", "下载"),
        T::PrintSheet => ("Print the instruction sheet", "打印指令单"),
        T::NotASheet => ("This batch has no instruction sheet: its channel takes files.", "该批次没有指令单：其渠道接收文件。"),
        T::MayNotHandleFiles => ("Your role may not handle bank files.", "您的角色不能处理银行文件。"),
        T::PreviewTitle => ("Preview of a result file", "结果文件预览"),
        T::AlreadyImported => ("This file was imported before: importing it again changes nothing.", "该文件已导入过：再次导入不会有任何变化。"),
        T::PreviewNothingApplied => ("Nothing has been applied yet: this is what importing the file would do now.", "尚未应用任何内容：以下是现在导入该文件将产生的变化。"),
        T::StateChanges => ("State changes", "状态变化"),
        T::Postings => ("Postings", "记账分录"),
        T::ApplyFile => ("Apply this file", "应用此文件"),
        T::UploadGone => ("That upload is no longer waiting: upload the file again.", "该上传已不在等待中，请重新上传文件。"),
        T::Imported => ("File imported:", "文件已导入："),
        T::NoChannelNamed => ("imported without naming a channel", "导入时未指定渠道"),
        T::Merchants => ("Merchants", "商户"),
        T::AccountStatus => ("Account status", "账户状态"),
        T::BankAccountTitle => ("Bank account", "银行账户"),
        T::Balances => ("Balances", "余额"),
        T::Holder => ("Holder", "户名"),
        T::Iban => ("IBAN", "IBAN"),
        T::Country => ("Country (local account)", "国家（本地账户）"),
        T::BankCode => ("Bank code (local account)", "银行代码（本地账户）"),
        T::AccountNumber => ("Account number (local account)", "账号（本地账户）"),
        T::Bic => ("BIC (optional)", "BIC（可选）"),
        T::FixAccount => ("Fix the bank account", "修正银行账户"),
        T::FixAccountHint => ("A new version of the account; orders waiting for it are paid again at once where the channel allows.", "新建账户版本；等待修正的订单将在渠道允许时立即重新付款。"),
        T::AccountFixed => ("Account saved. Payouts started for orders that waited:", "账户已保存。为等待中的订单发起的付款："),
        T::MayNotFixAccount => ("Your role may not change bank accounts.", "您的角色不能修改银行账户。"),
        T::NoAccount => ("no account", "无账户"),
        T::Version => ("Version", "版本"),
        T::Audit => ("Audit log", "审计日志"),
        T::Ledger => ("Ledger", "账本"),
        T::Actor => ("Actor", "操作者"),
        T::ActionPrefix => ("Action (prefix)", "动作（前缀）"),
        T::SubjectPrefix => ("Subject (prefix)", "对象（前缀）"),
        T::From => ("From (YYYY-MM-DD)", "起（YYYY-MM-DD）"),
        T::To => ("To, inclusive (YYYY-MM-DD)", "止（含，YYYY-MM-DD）"),
        T::ExportCsv => ("Export CSV", "导出 CSV"),
        T::Verify => ("Verify the audit chain and the books", "校验审计链与账本"),
        T::VerifyOk => ("Verified: the audit chain matches every row, and the books balance.", "校验通过：审计链与所有记录一致，账本平衡。"),
        T::VerifyFailed => ("Verification found problems:", "校验发现问题："),
        T::TrialBalance => ("Trial balance per currency", "各币种试算平衡"),
        T::Debits => ("Debits", "借方"),
        T::Credits => ("Credits", "贷方"),
        T::Net => ("Net", "差额"),
        T::Shown => ("shown (newest first, at most", "条（最新在前，最多"),
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
