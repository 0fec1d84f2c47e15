// response_mode=form_post (OAuth 2.0 Form Post Response Mode): send the answer on at once.
document.getElementById("answer").submit();
