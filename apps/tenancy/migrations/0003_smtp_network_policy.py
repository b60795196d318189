import apps.connections.netguard
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tenancy", "0002_organizations_projects_memberships"),
    ]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="smtp_extra_ports",
            field=models.CharField(
                blank=True,
                help_text="Ports besides 25, 465, 587 and 2525 that this tenant's SMTP settings may use on public addresses, separated by commas, e.g. 2526, 8025.",
                max_length=200,
                validators=[apps.connections.netguard.validate_ports],
                verbose_name="Extra allowed SMTP ports",
            ),
        ),
        migrations.AddField(
            model_name="tenant",
            name="smtp_private_network_allowed",
            field=models.BooleanField(
                default=False,
                help_text="Lets this tenant's own SMTP settings point at loopback, private or other non-public addresses, on any port (e.g. a relay or mail catcher inside your network). Off: public addresses only.",
                verbose_name="May use private network addresses for SMTP",
            ),
        ),
    ]
