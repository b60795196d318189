from apps.accounts.models import User
from apps.audit.models import AuditEntry
from tests.factories import SystemAdminFactory, UserFactory


def _change_url(user):
    return f"/admin/accounts/user/{user.pk}/change/"


def test_staff_flags_cannot_be_set_from_the_user_page(admin_client, member):
    old_name = member.full_name
    data = {
        "email": member.email,
        "full_name": "Renamed Member",
        "is_active": "on",
        "is_staff": "on",
        "is_superuser": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
    }
    response = admin_client.post(_change_url(member), data)

    assert response.status_code == 302
    member.refresh_from_db()
    assert member.full_name == "Renamed Member"
    assert not member.is_staff
    assert not member.is_superuser
    entry = AuditEntry.objects.get(action="user.updated")
    assert entry.changes == {"full_name": [old_name, "Renamed Member"]}
    assert entry.actor_email == "sysadmin@example.com"


def test_a_system_administrator_cannot_be_deleted_or_disabled_here(admin_client, system_admin):
    other_admin = SystemAdminFactory()

    assert (
        admin_client.post(
            f"/admin/accounts/user/{other_admin.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
    assert User.objects.filter(pk=other_admin.pk).exists()
    page = admin_client.get(_change_url(other_admin)).content.decode()
    assert 'name="is_active"' not in page
    assert "manage system administrators" in page


def test_deleting_a_user_is_audited(admin_client):
    user = UserFactory(email="leaver@example.com")

    response = admin_client.post(f"/admin/accounts/user/{user.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not User.objects.filter(email="leaver@example.com").exists()
    entry = AuditEntry.objects.get(action="user.deleted")
    assert entry.target_repr == "leaver@example.com"


def test_a_password_set_by_an_administrator_is_audited_without_the_password(admin_client, member):
    new_password = "Brand-new-Passw0rd-canary"
    response = admin_client.post(
        f"/admin/accounts/user/{member.pk}/password/",
        {"password1": new_password, "password2": new_password, "usable_password": "true"},
    )

    assert response.status_code == 302
    member.refresh_from_db()
    assert member.check_password(new_password)
    entry = AuditEntry.objects.get(action="user.password_changed")
    assert entry.changes == {"password": "changed"}
    assert new_password not in str(entry.changes)
