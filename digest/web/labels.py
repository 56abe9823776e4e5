"""Words on the web pages: the subscriber pages (in the site's language, or the reader's on
the pages reached from their own email) and the editor's preview (in the site's language)."""

from __future__ import annotations

LABELS: dict[str, dict[str, str]] = {
    "ko": {
        "error": "문제가 생겼습니다",
        "error_400": "잘못된 요청입니다",
        "error_403": "요청을 확인할 수 없습니다",
        "error_404": "페이지를 찾을 수 없습니다",
        "error_405": "허용되지 않는 요청 방식입니다",
        "bad_link": "링크가 올바르지 않거나 손상되었습니다. "
        "받은 메일의 링크를 그대로 사용해 주세요.",
        "not_listed": "이 주소는 구독자 목록에 없습니다.",
        "stale_form": "양식이 만료되었거나 다른 사이트에서 보낸 요청입니다. "
        "페이지를 새로 고친 뒤 다시 시도해 주세요.",
        "bad_choice": "알 수 없는 선택입니다.",
        "unsubscribe_title": "구독 취소",
        "unsubscribe_confirm": "{email} 주소의 구독을 취소할까요? "
        "더 이상 다이제스트를 받지 않습니다.",
        "unsubscribe_button": "구독 취소하기",
        "unsubscribed": "{email} 주소의 구독이 취소되었습니다. "
        "앞으로 어떤 다이제스트도 보내지 않습니다.",
        "already_unsubscribed": "{email} 주소는 이미 구독이 취소되어 있습니다.",
        "suppressed_other": "{email} 주소로는 메일을 보내지 않습니다 (반송 또는 신고).",
        "resubscribe_button": "다시 구독하기",
        "resubscribed": "다시 구독되었습니다. 아래에서 주제를 고를 수 있습니다.",
        "preferences_title": "구독 설정",
        "preferences_intro": "{email} 주소로 받을 주제를 고르세요. "
        "아무것도 고르지 않으면 모든 새 글을 받습니다.",
        "themes": "주제",
        "delivery": "받기",
        "active": "계속 받기",
        "paused": "잠시 멈추기",
        "save": "저장",
        "saved": "저장되었습니다. 다음 다이제스트부터 적용됩니다.",
        "leave_title": "구독 취소",
        "leave_button": "구독 취소하기",
        "everything": "전체",
        "archive": "아카이브",
        "archive_intro": "지금까지 보낸 다이제스트입니다.",
        "archive_empty": "아직 보낸 다이제스트가 없습니다.",
        "feed": "Atom 피드",
        "text_version": "텍스트로 보기",
        "use_email_link": "구독 취소나 설정 변경은 받은 메일 아래쪽의 링크에서 할 수 있습니다.",
        "home": "처음으로",
        # Stands in for the address in archive copies: "구독자 주소로 구독 신청하신 ...".
        "public_email": "구독자",
    },
    "en": {
        "error": "Something went wrong",
        "error_400": "Bad request",
        "error_403": "This request could not be verified",
        "error_404": "Not found",
        "error_405": "Method not allowed",
        "bad_link": "This link is not valid or was damaged. "
        "Please use the link from your email as is.",
        "not_listed": "This address is not on the list.",
        "stale_form": "The form expired or was sent from another site. "
        "Reload the page and try again.",
        "bad_choice": "Unknown choice.",
        "unsubscribe_title": "Unsubscribe",
        "unsubscribe_confirm": "Unsubscribe {email}? You will get no more digests.",
        "unsubscribe_button": "Unsubscribe",
        "unsubscribed": "{email} is unsubscribed. No further digest will be sent to it.",
        "already_unsubscribed": "{email} is already unsubscribed.",
        "suppressed_other": "No mail is sent to {email} (bounced or reported).",
        "resubscribe_button": "Subscribe again",
        "resubscribed": "You are subscribed again. Choose your themes below.",
        "preferences_title": "Preferences",
        "preferences_intro": "Choose the themes {email} receives. "
        "Choose none to get every new post.",
        "themes": "Themes",
        "delivery": "Delivery",
        "active": "Keep sending",
        "paused": "Pause for now",
        "save": "Save",
        "saved": "Saved. The next digest follows these choices.",
        "leave_title": "Leave",
        "leave_button": "Unsubscribe",
        "everything": "Everything",
        "archive": "Archive",
        "archive_intro": "Every digest sent so far.",
        "archive_empty": "No digest has been sent yet.",
        "feed": "Atom feed",
        "text_version": "Plain text",
        "use_email_link": "To unsubscribe or change your preferences, use the links at the bottom "
        "of any digest email.",
        "home": "Home",
        "public_email": "a reader",  # "... because a reader subscribed to ..."
    },
}


def labels_for(language: str) -> dict[str, str]:
    return LABELS.get(language, LABELS["en"])


# The editor's preview (`digest preview`): its pages and the names of its views. Warnings and
# notes about a view (sizes, links, images) are diagnostics and stay in English.
PREVIEW: dict[str, dict[str, str]] = {
    "ko": {
        "error": "미리 보기를 만들 수 없습니다",
        "error_400": "잘못된 요청입니다",
        "error_403": "요청을 확인할 수 없습니다",
        "error_404": "그런 보기가 없습니다",
        "error_405": "허용되지 않는 요청 방식입니다",
        "no_view": "다음 발송에 그런 보기가 없습니다 (계획이 바뀌었을 수 있습니다).",
        "nothing_to_send": "이 보기에는 보낼 것이 없습니다.",
        "stale_form": "양식이 만료되었거나 다른 사이트에서 보낸 요청입니다. 새로 고치세요.",
        "not_an_address": "주소가 올바르지 않습니다: {error}",
        "title": "미리 보기",
        "app": "digest 미리 보기",
        "next_send": "다음 발송",
        "planned_afresh": "불러올 때마다 새로 계획합니다. 설정이나 템플릿을 고친 뒤 새로 고치세요.",
        "col_view": "보기",
        "col_subscribers": "구독자",
        "col_subject": "제목",
        "col_posts": "글",
        "col_warnings": "경고",
        "recipients": "다음 발송에서 구독자 {n}명이 이 메일을 받습니다. "
        "{email} 주소가 받을 모습입니다.",
        "test_copy_result": "{email} 주소로 보낸 테스트 메일: {status} ({reply})",
        "warnings": "경고",
        "size": "HTML: {size} KB (Gmail은 약 {clip} KB가 넘으면 자릅니다)",
        "clipped": "잘림",
        "fits": "들어감",
        "send_to": "테스트 메일 받을 주소",
        "send_button": "테스트 메일 보내기",
        "send_via": "{smtp}(으)로 보냅니다. 아무것도 기록하지 않습니다",
        "download": ".eml 내려받기",
        "email": "메일",
        "desktop": "데스크톱",
        "phone": "휴대폰 (375 px)",
        "headers": "헤더",
        "plain_text": "텍스트",
        "view_subscriber": "{email} 님이 받을 메일",
        "view_variant": "변형: {themes}",
        "view_theme": "주제: {title}",
        "everything": "전체",
        "in_language": "{label} ({language})",
        "language_ko": "한국어",
        "language_en": "영어",
    },
    "en": {
        "error": "Cannot render the preview",
        "error_400": "Bad request",
        "error_403": "Request not verified",
        "error_404": "No such view",
        "error_405": "Method not allowed",
        "no_view": "No such view in the next send (the plan may have changed).",
        "nothing_to_send": "This view has nothing to send.",
        "stale_form": "The form expired or came from another site; reload the page.",
        "not_an_address": "Not an address: {error}",
        "title": "preview",
        "app": "digest preview",
        "next_send": "The next send",
        "planned_afresh": "Planned afresh on every load: edit the config or templates and reload.",
        "col_view": "view",
        "col_subscribers": "subscribers",
        "col_subject": "subject",
        "col_posts": "posts",
        "col_warnings": "warnings",
        "recipients": "{n} subscriber(s) get this copy in the next send; "
        "shown as {email} would get it.",
        "test_copy_result": "Test copy to {email}: {status} ({reply})",
        "warnings": "Warnings",
        "size": "HTML: {size} KB of Gmail's ~{clip} KB before clipping",
        "clipped": "clipped",
        "fits": "fits",
        "send_to": "Send a test copy to",
        "send_button": "Send test copy",
        "send_via": "via {smtp}; nothing is recorded",
        "download": "Download .eml",
        "email": "Email",
        "desktop": "Desktop",
        "phone": "Phone (375 px)",
        "headers": "Headers",
        "plain_text": "Plain text",
        "view_subscriber": "{email}'s copy",
        "view_variant": "variant: {themes}",
        "view_theme": "theme: {title}",
        "everything": "everything",
        "in_language": "{label} ({language})",
        "language_ko": "Korean",
        "language_en": "English",
    },
}


def preview_labels_for(language: str) -> dict[str, str]:
    return PREVIEW.get(language, PREVIEW["en"])
