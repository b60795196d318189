from playwright.sync_api import expect

from tests.factories import TEST_PASSWORD


def test_a_user_signs_in_with_the_form_and_sees_the_home_page(page, member):
    page.goto("/")

    # Anonymous visitors are sent to the login form first.
    expect(page).to_have_url("/accounts/login/?next=/")
    page.get_by_label("Email address").fill(member.email)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("heading", name=f"Welcome, {member.get_short_name()}")).to_be_visible()
    expect(page.get_by_text(member.email)).to_be_visible()


def test_a_wrong_password_is_explained_in_plain_words(page, member):
    page.goto("/accounts/login/")
    page.get_by_label("Email address").fill(member.email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()

    expect(
        page.get_by_text("That email address and password do not match an account.")
    ).to_be_visible()
    expect(page.get_by_role("heading", name="Sign in to Postmaster")).to_be_visible()
