"""Words on the subscriber pages, in the site's language (`site.language`: ko or en)."""

from __future__ import annotations

LABELS: dict[str, dict[str, str]] = {
    "ko": {
        "error": "문제가 생겼습니다",
        "error_400": "잘못된 요청입니다",
        "error_403": "요청을 확인할 수 없습니다",
        "error_404": "페이지를 찾을 수 없습니다",
        "error_405": "허용되지 않는 요청 방식입니다",
        "error_410": "링크가 만료되었습니다",
        "error_429": "요청이 너무 많습니다",
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
        # Sign-up (digest.web.signup)
        "signup_title": "구독 신청",
        "signup_intro": "새 글을 모아 요약한 다이제스트를 메일로 보내 드립니다. "
        "주소를 적고 받을 주제를 고르세요. 아무것도 고르지 않으면 모든 새 글을 받습니다.",
        "signup_email": "메일 주소",
        "signup_name": "이름 (선택)",
        "signup_honeypot": "이 칸은 비워 두세요",
        "signup_button": "구독 신청",
        "signup_bad_address": "메일 주소를 확인해 주세요.",
        "signup_too_many": "요청이 너무 많습니다. 잠시 뒤에 다시 시도해 주세요.",
        "signup_check_title": "메일함을 확인해 주세요",
        "signup_check_inbox": "확인 메일을 보냈습니다. 메일의 링크를 {hours}시간 안에 열어 "
        "구독을 확인해 주세요. 메일이 오지 않으면 스팸함을 확인하거나 주소를 다시 적어 주세요.",
        "signup_confirm_title": "구독 확인",
        "signup_confirm": "{email} 주소로 다이제스트를 받으시겠어요?",
        "signup_confirm_button": "구독 확인",
        "signup_done": "구독되었습니다. 환영 메일을 보냈습니다.",
        "signup_already": "이미 구독 중입니다. 선택한 주제가 저장되었습니다.",
        "signup_expired": "확인 링크가 만료되었습니다. 구독 신청을 다시 해 주세요.",
        "signup_refused": "{email} 주소로는 메일을 보낼 수 없어 구독할 수 없습니다.",
    },
    "en": {
        "error": "Something went wrong",
        "error_400": "Bad request",
        "error_403": "This request could not be verified",
        "error_404": "Not found",
        "error_405": "Method not allowed",
        "error_410": "This link has expired",
        "error_429": "Too many requests",
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
        # Sign-up (digest.web.signup)
        "signup_title": "Subscribe",
        "signup_intro": "Get the new posts, summarized, in one email digest. Enter your "
        "address and choose themes; choose none to get every new post.",
        "signup_email": "Email address",
        "signup_name": "Name (optional)",
        "signup_honeypot": "Leave this field empty",
        "signup_button": "Subscribe",
        "signup_bad_address": "Please check the email address.",
        "signup_too_many": "Too many requests. Please try again later.",
        "signup_check_title": "Check your inbox",
        "signup_check_inbox": "We sent you a confirmation email. Open its link within {hours} "
        "hours to confirm. If nothing arrives, look in your spam folder or enter the "
        "address again.",
        "signup_confirm_title": "Confirm your subscription",
        "signup_confirm": "Send the digest to {email}?",
        "signup_confirm_button": "Confirm",
        "signup_done": "You are subscribed. A welcome email is on its way.",
        "signup_already": "You were already subscribed. Your themes are saved.",
        "signup_expired": "This confirmation link has expired. Please subscribe again.",
        "signup_refused": "{email} cannot be subscribed: mail to it bounced or was reported.",
    },
}


def labels_for(language: str) -> dict[str, str]:
    return LABELS.get(language, LABELS["en"])
